package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	schemacfg "github.com/packetworks/flowsentry/schemas/config"
)

func TestExampleIsValid(t *testing.T) {
	c, err := Load("../collector.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listeners) != 3 || c.Produce.Topic != "flows" || len(c.Sampling.Exporters) != 2 {
		t.Errorf("example not read as expected: %+v", c)
	}
	dc := c.DecodeConfig()
	if len(dc.Sampling) != 2 {
		t.Errorf("sampling overrides: %+v", dc.Sampling)
	}
}

func TestDefaultsAreValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateNamesKey(t *testing.T) {
	cases := []struct {
		yaml, key string
	}{
		{"log_level: loud", "log_level"},
		{"listeners: [{protocol: netflow9, addr: ':2055', network: udp, sockets: 1}]", "listeners[0].protocol"},
		{"listeners: [{protocol: netflow, addr: '2055', network: udp, sockets: 1}]", "listeners[0].addr"},
		{"listeners: [{protocol: netflow, addr: ':2055', network: udp, sockets: 0}]", "listeners[0].sockets"},
		{"templates: {ttl: 10s}", "templates.ttl"},
		{"sampling: {exporters: [{address: nope, rate: 10}]}", "sampling.exporters[0].address"},
		{"sampling: {exporters: [{address: 192.0.2.1}]}", "sampling.exporters[0].rate"},
		{"produce: {compression: brotli}", "produce.compression"},
		{"produce: {batch_bytes: 10}", "produce.batch_bytes"},
		{"produce: {linger: 0s}", "produce.linger"},
		{"kafka: {brokers: []}", "kafka.brokers"},
		{"inventory: ''", "inventory"},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			cfg := Default()
			if err := schemacfg.Decode([]byte(c.yaml), &cfg); err != nil {
				t.Fatal(err)
			}
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.key+":") {
				t.Fatalf("error %v does not name %s", err, c.key)
			}
		})
	}
}

func TestUnknownKeyRejected(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("produce: {topik: flows}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "topik") {
		t.Fatalf("unknown key not rejected: %v", err)
	}
}
