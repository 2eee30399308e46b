package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packetworks/flowsentry/schemas/kafkaclient"
)

func TestLoadKafkaSection(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, wantErr string
		wantBrokers         string
	}{
		{"service file, other sections ignored", "log_level: info\nkafka:\n  brokers: [\"k1:9093\", \"k2:9093\"]\n  tls: {enabled: true}\nother: {x: 1}\n", "", "k1:9093,k2:9093"},
		{"unknown key in kafka is an error", "kafka:\n  brokerz: [x]\n", "field brokerz not found", ""},
		{"no kafka section", "log_level: info\n", "no kafka section", ""},
		{"invalid section", "kafka:\n  brokers: [nohostport]\n", "kafka.brokers[0]", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "c.yaml")
			if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			kc := kafkaclient.Default()
			err := loadKafkaSection(p, &kc)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(kc.Brokers, ","); got != tc.wantBrokers || !kc.TLS.Enabled {
				t.Fatalf("brokers %s tls %v", got, kc.TLS.Enabled)
			}
		})
	}
}
