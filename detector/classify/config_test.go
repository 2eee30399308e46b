package classify

import (
	"strings"
	"testing"
)

func TestValidateNewKeys(t *testing.T) {
	cases := []struct {
		name string
		mod  func(*Config)
		want string // "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"surge rule off", func(c *Config) { c.Surge.NoticeRatio = 0 }, ""},
		{"min_samples negative", func(c *Config) { c.MinSamples = -1 }, "classify.min_samples"},
		{"refine_windows negative", func(c *Config) { c.RefineWindows = -1 }, "classify.refine_windows"},
		{"notice below min_ratio", func(c *Config) { c.Surge.NoticeRatio = 1.5 }, "classify.surge.notice_ratio"},
		{"mix shift 0", func(c *Config) { c.Surge.MaxMixShift = 0 }, "classify.surge.max_mix_shift"},
		{"size change below 1", func(c *Config) { c.Surge.MaxSizeChange = 0.5 }, "classify.surge.max_size_change"},
		{"peer rate below 1", func(c *Config) { c.Surge.MaxPeerRate = 0.9 }, "classify.surge.max_peer_rate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate("classify")
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want one naming %q", err, tc.want)
			}
		})
	}
}
