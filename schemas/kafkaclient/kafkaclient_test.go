package kafkaclient

import (
	"strings"
	"testing"

	"github.com/packetworks/flowsentry/schemas/secret"
)

func TestValidateNamesTheKey(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"no brokers", func(c *Config) { c.Brokers = nil }, "kafka.brokers: at least one"},
		{"bad broker", func(c *Config) { c.Brokers = []string{"localhost"} }, "kafka.brokers[0]"},
		{"bad mech", func(c *Config) { c.SASL.Mechanism = "gssapi" }, "kafka.sasl.mechanism"},
		{"no user", func(c *Config) { c.SASL.Mechanism = "scram-sha-512"; c.SASL.Password = secret.Ref{Env: "X"} }, "kafka.sasl.username"},
		{"no password", func(c *Config) { c.SASL.Mechanism = "plain"; c.SASL.Username = "u" }, "kafka.sasl.password"},
		{"tls files without tls", func(c *Config) { c.TLS.CAFile = "/ca.pem" }, "kafka.tls.enabled"},
		{"cert without key", func(c *Config) { c.TLS.Enabled = true; c.TLS.CertFile = "/c.pem" }, "kafka.tls.cert_file/key_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mod(&c)
			err := c.Validate("kafka")
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestResolveSASL(t *testing.T) {
	t.Setenv("FS_KAFKA_PW", "s3cret")
	for _, mech := range []string{"plain", "scram-sha-256", "scram-sha-512"} {
		c := Default()
		c.SASL = SASL{Mechanism: mech, Username: "svc", Password: secret.Ref{Env: "FS_KAFKA_PW"}}
		s, err := c.Resolve("kafka")
		if err != nil {
			t.Fatalf("%s: %v", mech, err)
		}
		if s.SASL == nil || !strings.EqualFold(s.SASL.Name(), mech) {
			t.Fatalf("%s: mechanism %v", mech, s.SASL)
		}
	}
	c := Default()
	c.TLS = TLS{Enabled: true, CAFile: "/nonexistent/ca.pem"}
	if _, err := c.Resolve("kafka"); err == nil || !strings.Contains(err.Error(), "kafka.tls.ca_file") {
		t.Fatalf("missing CA: %v", err)
	}
}
