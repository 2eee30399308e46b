package worker

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate("worker"); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	cases := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Group = "" }, "worker.group"},
		{func(c *Config) { c.Topics.State = "" }, "worker.topics.state"},
		{func(c *Config) { c.StartOffset = "middle" }, "worker.start_offset"},
		{func(c *Config) { c.CheckpointSeconds = 0 }, "worker.checkpoint_seconds"},
		{func(c *Config) { c.SessionTimeoutSeconds = 3 }, "worker.session_timeout_seconds"},
		{func(c *Config) { c.HeartbeatSeconds = 5 }, "worker.heartbeat_seconds"},
		{func(c *Config) { c.FetchMaxWaitMs = 1 }, "worker.fetch_max_wait_ms"},
		{func(c *Config) { c.Dedup.Window = 1 }, "worker.dedup.window"},
		{func(c *Config) { c.Dedup.Producers = 0 }, "worker.dedup.producers"},
	}
	for _, tc := range cases {
		c := DefaultConfig()
		tc.mod(&c)
		if err := c.Validate("worker"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want it to name %s", err, tc.want)
		}
	}
}
