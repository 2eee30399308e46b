package sink

import (
	"strings"
	"testing"

	"github.com/packetworks/flowsentry/schemas/config"
)

func TestExampleConfigIsTheDefault(t *testing.T) {
	cfg := DefaultConfig()
	if err := config.Load("../sink.example.yaml", &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	def := DefaultConfig()
	if cfg.Batch != def.Batch || cfg.Consumer != def.Consumer || cfg.Retry != def.Retry ||
		len(cfg.Retention.KeepDays) != len(def.Retention.KeepDays) || cfg.ClickHouse.Username != def.ClickHouse.Username {
		t.Fatalf("example differs from defaults:\n%+v\n%+v", cfg, def)
	}
}

func TestConfigValidateNamesKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		yaml string
		want string // substring of the error; "" = valid
	}{
		{"defaults", ``, ""},
		{"partial keep_days keeps the other tables", "retention:\n  keep_days:\n    flows: 7\n", ""},
		{"default user refused", "clickhouse:\n  username: default\n", "clickhouse.username"},
		{"batch too big for one part", "batch:\n  max_rows: 2000000\n", "batch.max_rows"},
		{"zero wait", "batch:\n  max_wait: 0s\n", "batch.max_wait"},
		{"no dead letters", "consumer:\n  dead_letter_topic: \"\"\n", "consumer.dead_letter_topic"},
		{"same topic twice", "consumer:\n  baselines_topic: flows\n", "is also consumer."},
		{"bad start", "consumer:\n  start_offset: middle\n", "consumer.start_offset"},
		{"backoff order", "retry:\n  initial_backoff: 10s\n  max_backoff: 1s\n", "retry.max_backoff"},
		{"retention days", "retention:\n  keep_days:\n    flows: 0\n", "retention.keep_days.flows"},
		{"retention table name", "retention:\n  keep_days:\n    \"flows; DROP\": 3\n", "not a table name"},
		{"kafka brokers", "kafka:\n  brokers: [nohost]\n", "kafka.brokers[0]"},
		{"log level", "log_level: loud\n", "log_level"},
		{"dedup window", "consumer:\n  dedup:\n    window: 10\n", "consumer.dedup.window"},
		{"dedup producers", "consumer:\n  dedup:\n    producers: 0\n", "consumer.dedup.producers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if err := config.Decode([]byte(tc.yaml), &cfg); err != nil {
				t.Fatal(err)
			}
			err := cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v does not name %q", err, tc.want)
			}
		})
	}
	cfg := DefaultConfig()
	_ = config.Decode([]byte("retention:\n  keep_days:\n    flows: 7\n"), &cfg)
	if cfg.Retention.KeepDays["flows"] != 7 || cfg.Retention.KeepDays["flows_1m"] != 180 {
		t.Fatalf("keep_days merge: %v", cfg.Retention.KeepDays)
	}
	if err := config.Decode([]byte("batch:\n  max_rowz: 5\n"), &cfg); err == nil {
		t.Fatal("unknown key accepted")
	}
	if cfg.replayCheckRows() != 2*cfg.Batch.MaxRows {
		t.Fatal("replay_check_rows default")
	}
}
