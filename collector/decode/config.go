package decode

import (
	"net/netip"
	"time"
)

// Config tunes decoding.
type Config struct {
	// TemplateTTL forgets templates and sampling state not refreshed for
	// this long (an exporter that changed its templates or vanished).
	TemplateTTL time.Duration
	// PendingSets bounds the data sets held per exporter domain while
	// their template is unknown; PendingTTL is how long they wait.
	PendingSets int
	PendingTTL  time.Duration
	// MaxExporters bounds the per-exporter metric label values; exporters
	// beyond it share the label "other".
	MaxExporters int
	// Sampling rates for exporters that send none (or, with Force, whose
	// announced rate must be ignored), and a default for every exporter.
	Sampling    map[netip.Addr]SamplingOverride
	DefaultRate uint64
}

// SamplingOverride is a configured sampling rate for one exporter.
type SamplingOverride struct {
	Rate  uint64
	Force bool // use Rate even when the exporter announces one
}

func (c Config) withDefaults() Config {
	if c.TemplateTTL <= 0 {
		c.TemplateTTL = time.Hour
	}
	if c.PendingSets <= 0 {
		c.PendingSets = 64
	}
	if c.PendingTTL <= 0 {
		c.PendingTTL = 30 * time.Second
	}
	if c.MaxExporters <= 0 {
		c.MaxExporters = 4096
	}
	return c
}
