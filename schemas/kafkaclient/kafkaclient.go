// Package kafkaclient turns the "kafka" section that every Flowsentry
// service shares (brokers, TLS, SASL) into segmentio/kafka-go dialers and
// transports. Passwords come from the environment or a file (package secret).
package kafkaclient

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/packetworks/flowsentry/schemas/secret"
	"github.com/packetworks/flowsentry/schemas/tlsconfig"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Config is the YAML "kafka" section.
type Config struct {
	Brokers  []string `yaml:"brokers"`
	ClientID string   `yaml:"client_id"`
	TLS      TLS      `yaml:"tls"`
	SASL     SASL     `yaml:"sasl"`
}

// TLS configures encryption to the brokers.
type TLS = tlsconfig.Config

// SASL configures authentication. Mechanism: "", "plain", "scram-sha-256"
// or "scram-sha-512".
type SASL struct {
	Mechanism string     `yaml:"mechanism"`
	Username  string     `yaml:"username"`
	Password  secret.Ref `yaml:"password"`
}

// Default is a local plaintext broker.
func Default() Config {
	return Config{Brokers: []string{"127.0.0.1:9092"}, ClientID: "flowsentry"}
}

// Validate checks the section; prefix is its key in the service's YAML
// (e.g. "kafka") so errors name the bad key.
func (c Config) Validate(prefix string) error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, fmt.Errorf("%s.brokers: at least one broker is required", prefix))
	}
	for i, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			errs = append(errs, fmt.Errorf("%s.brokers[%d]: %q is not host:port", prefix, i, b))
		}
	}
	errs = append(errs, c.TLS.Validate(prefix+".tls"))
	switch strings.ToLower(c.SASL.Mechanism) {
	case "":
	case "plain", "scram-sha-256", "scram-sha-512":
		if c.SASL.Username == "" {
			errs = append(errs, fmt.Errorf("%s.sasl.username: required with mechanism %s", prefix, c.SASL.Mechanism))
		}
		if c.SASL.Password.IsZero() {
			errs = append(errs, fmt.Errorf("%s.sasl.password: set env or file", prefix))
		}
	default:
		errs = append(errs, fmt.Errorf("%s.sasl.mechanism: %q is not one of plain, scram-sha-256, scram-sha-512", prefix, c.SASL.Mechanism))
	}
	return errors.Join(errs...)
}

// Security is the resolved TLS configuration and SASL mechanism.
type Security struct {
	TLS  *tls.Config
	SASL sasl.Mechanism
}

// Resolve loads certificates and secrets.
func (c Config) Resolve(prefix string) (Security, error) {
	var s Security
	tc, err := c.TLS.Build(prefix + ".tls")
	if err != nil {
		return s, err
	}
	s.TLS = tc
	if c.SASL.Mechanism != "" {
		pw, err := c.SASL.Password.Resolve(prefix + ".sasl.password")
		if err != nil {
			return s, err
		}
		switch strings.ToLower(c.SASL.Mechanism) {
		case "plain":
			s.SASL = plain.Mechanism{Username: c.SASL.Username, Password: pw.Reveal()}
		case "scram-sha-256", "scram-sha-512":
			algo := scram.SHA512
			if strings.EqualFold(c.SASL.Mechanism, "scram-sha-256") {
				algo = scram.SHA256
			}
			m, err := scram.Mechanism(algo, c.SASL.Username, pw.Reveal())
			if err != nil {
				return s, fmt.Errorf("%s.sasl: %w", prefix, err)
			}
			s.SASL = m
		}
	}
	return s, nil
}

// Dialer returns a dialer for consumers (kafka.Reader) and admin calls.
func (s Security) Dialer(clientID string) *kafka.Dialer {
	return &kafka.Dialer{ClientID: clientID, Timeout: 10 * time.Second, DualStack: true,
		TLS: s.TLS, SASLMechanism: s.SASL}
}

// Transport returns a transport for producers (kafka.Writer) and kafka.Client.
func (s Security) Transport(clientID string) *kafka.Transport {
	return &kafka.Transport{ClientID: clientID, DialTimeout: 10 * time.Second,
		TLS: s.TLS, SASL: s.SASL}
}
