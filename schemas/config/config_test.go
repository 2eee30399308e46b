package config

import (
	"strings"
	"testing"
	"time"
)

type svc struct {
	Listen string        `yaml:"listen"`
	Window time.Duration `yaml:"window"`
	Kafka  struct {
		Brokers []string `yaml:"brokers"`
	} `yaml:"kafka"`
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name, in, wantErr string
		check             func(svc) bool
	}{
		{"defaults kept", "window: 5s\n", "", func(s svc) bool { return s.Listen == ":8080" && s.Window == 5*time.Second }},
		{"empty file", "", "", func(s svc) bool { return s.Window == 10*time.Second }},
		{"unknown key", "kafka:\n  broker: [x]\n", "field broker not found", nil},
		{"bad type", "window: soon\n", "cannot unmarshal", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := svc{Listen: ":8080", Window: 10 * time.Second}
			err := Decode([]byte(tc.in), &s)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !tc.check(s) {
				t.Fatalf("err=%v got %+v", err, s)
			}
		})
	}
}
