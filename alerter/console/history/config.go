package history

import (
	"errors"
	"fmt"
	"time"

	"github.com/packetworks/flowsentry/schemas/chclient"
	"github.com/packetworks/flowsentry/schemas/secret"
)

// Config is the console's read access to ClickHouse (YAML section
// "console" of the alerter, beside "enabled").
type Config struct {
	// ClickHouse is a read connection: the read-only analyst user, never
	// the writer the audit trail uses.
	ClickHouse chclient.Config `yaml:"clickhouse"`
	// QueryTimeout bounds every query, so a slow server gives the browser
	// a 503 instead of a hung page.
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// BandSpreads is k in the baseline band expected ± k spreads (in the
	// detector's log domain, see docs/console.md).
	BandSpreads float64 `yaml:"band_spreads"`
	// MinuteRollupMaxSpan: ranges up to this long read flows_1m, longer
	// ones flows_1h (the smallest rollup that answers).
	MinuteRollupMaxSpan time.Duration `yaml:"minute_rollup_max_span"`
	// TalkersMaxWindow bounds the raw-flows window of top talkers.
	TalkersMaxWindow time.Duration `yaml:"talkers_max_window"`
	// MaxRange bounds any chart's range.
	MaxRange time.Duration `yaml:"max_range"`
}

// Default reads the local server as flowsentry_analyst, password from
// FLOWSENTRY_CH_ANALYST_PASSWORD.
func Default() Config {
	ch := chclient.Default()
	ch.Username = "flowsentry_analyst"
	ch.Password = secret.Ref{Env: "FLOWSENTRY_CH_ANALYST_PASSWORD"}
	ch.DialTimeout = 2 * time.Second
	return Config{ClickHouse: ch, QueryTimeout: 10 * time.Second, BandSpreads: 3,
		MinuteRollupMaxSpan: 48 * time.Hour, TalkersMaxWindow: time.Hour, MaxRange: 400 * 24 * time.Hour}
}

// Validate names the bad key under prefix.
func (c Config) Validate(prefix string) error {
	errs := []error{c.ClickHouse.Validate(prefix + ".clickhouse")}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"query_timeout", c.QueryTimeout}, {"minute_rollup_max_span", c.MinuteRollupMaxSpan},
		{"talkers_max_window", c.TalkersMaxWindow}, {"max_range", c.MaxRange}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s.%s: must be > 0", prefix, d.key))
		}
	}
	if !(c.BandSpreads > 0 && c.BandSpreads <= 20) {
		errs = append(errs, fmt.Errorf("%s.band_spreads: %g must be in (0, 20]", prefix, c.BandSpreads))
	}
	return errors.Join(errs...)
}
