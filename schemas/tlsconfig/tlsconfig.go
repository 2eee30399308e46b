// Package tlsconfig is the "tls" sub-section shared by every network client
// of Flowsentry (Kafka, ClickHouse): CA to verify the server, optional
// client certificate, and the explicit opt-out of verification.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Config is the YAML "tls" section.
type Config struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// Validate names the bad key under prefix (e.g. "kafka.tls").
func (c Config) Validate(prefix string) error {
	var errs []error
	if !c.Enabled && (c.CAFile != "" || c.CertFile != "" || c.KeyFile != "") {
		errs = append(errs, fmt.Errorf("%s.enabled: files are set but TLS is not enabled", prefix))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, fmt.Errorf("%s.cert_file/key_file: set both or neither", prefix))
	}
	return errors.Join(errs...)
}

// Build loads the files; nil when TLS is not enabled.
func (c Config) Build(prefix string) (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName,
		InsecureSkipVerify: c.InsecureSkipVerify} //nolint:gosec // the operator's explicit choice
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", prefix, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s.ca_file: no PEM certificate in %s", prefix, c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s.cert_file: %w", prefix, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
