// Package chclient turns the "clickhouse" section shared by the services
// into a clickhouse-go/v2 connection (native protocol, optional TLS).
package chclient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/packetworks/flowsentry/schemas/secret"
	"github.com/packetworks/flowsentry/schemas/tlsconfig"
)

// Config is the YAML "clickhouse" section.
type Config struct {
	Addr        []string      `yaml:"addr"`
	Database    string        `yaml:"database"`
	Username    string        `yaml:"username"`
	Password    secret.Ref    `yaml:"password"`
	DialTimeout time.Duration `yaml:"dial_timeout"`
	TLS         TLS           `yaml:"tls"`
}

// TLS for the native protocol (ClickHouse's tcp_port_secure).
type TLS = tlsconfig.Config

// Default is the local server with the services' writer user.
func Default() Config {
	return Config{Addr: []string{"127.0.0.1:9000"}, Database: "flowsentry",
		Username: "flowsentry_writer", Password: secret.Ref{Env: "FLOWSENTRY_CH_WRITER_PASSWORD"},
		DialTimeout: 5 * time.Second}
}

// Validate names the bad key under prefix.
func (c Config) Validate(prefix string) error {
	var errs []error
	if len(c.Addr) == 0 {
		errs = append(errs, fmt.Errorf("%s.addr: at least one host:port is required", prefix))
	}
	for i, a := range c.Addr {
		if !strings.Contains(a, ":") {
			errs = append(errs, fmt.Errorf("%s.addr[%d]: %q is not host:port", prefix, i, a))
		}
	}
	if c.Database == "" {
		errs = append(errs, fmt.Errorf("%s.database: required", prefix))
	}
	if c.Username == "" {
		errs = append(errs, fmt.Errorf("%s.username: required", prefix))
	}
	errs = append(errs, c.TLS.Validate(prefix+".tls"))
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("%s.dial_timeout: must not be negative", prefix))
	}
	return errors.Join(errs...)
}

// Options resolves secrets and certificates into clickhouse-go options.
func (c Config) Options(prefix string) (*clickhouse.Options, error) {
	pw, err := c.Password.Resolve(prefix + ".password")
	if err != nil {
		return nil, err
	}
	opts := &clickhouse.Options{
		Addr:        c.Addr,
		Auth:        clickhouse.Auth{Database: c.Database, Username: c.Username, Password: pw.Reveal()},
		DialTimeout: c.DialTimeout,
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
	}
	tc, err := c.TLS.Build(prefix + ".tls")
	if err != nil {
		return nil, err
	}
	opts.TLS = tc
	return opts, nil
}

// Open connects and pings, so that a wrong address or password fails at start.
func (c Config) Open(ctx context.Context, prefix string) (driver.Conn, error) {
	opts, err := c.Options(prefix)
	if err != nil {
		return nil, err
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s: ping %v: %w", prefix, c.Addr, err)
	}
	return conn, nil
}
