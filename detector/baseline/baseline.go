// Package baseline learns what is normal for one target (subnet key +
// direction), metric by metric, and scores a window against it.
//
// Method (see docs/detection.md): values are compared in the log domain,
// x = log2(1+v), so that spread is relative (a 20 % wobble is the same
// on a 1 Mb/s and a 10 Gb/s subnet) and heavy tails do not dominate.
// Each metric has a level L and a spread D (Huber-clipped EWMAs: a robust
// stand-in for the running median and MAD). The three volume metrics (bps,
// pps, flows) add a seasonal offset S and spread per slot (24 hours x
// weekday/weekend), Holt-Winters style: expected = L + S[slot]. The state
// is fixed-size float32 arrays: about 1.3 KB per target.
package baseline

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/packetworks/flowsentry/detector/window"
)

// Slots are the seasonal slots: hour of day, weekday (0-23) or weekend
// (24-47).
const Slots = 48

// NumSeasonal metrics (window.Bps, Pps, Flows: the first three) carry
// seasonal slots; the composition metrics (per protocol, SYN, fragments,
// distinct counts) only a level and spread, to stay within 2 KiB.
const NumSeasonal = 3

// Cell is a level and a spread in log2(1+v) units.
type Cell struct{ Level, Spread float32 }

// State is one target's learned baseline.
type State struct {
	Global [window.NumMetrics]Cell
	Season [NumSeasonal][Slots]Cell // Level is an offset from Global.Level
	SlotN  [Slots]uint8             // windows learned per slot (saturates)
	N      uint32                   // windows learned in total
}

// Config tunes learning. Alphas are per evaluation window.
type Config struct {
	// Alpha: weight of a new window in the level (0.02: memory of about
	// 50 windows, 8 minutes at 10 s windows).
	Alpha float64 `yaml:"alpha"`
	// SpreadAlpha: weight of a new window in the spread.
	SpreadAlpha float64 `yaml:"spread_alpha"`
	// SeasonAlpha: weight of a new window in its slot's offset and spread.
	// A slot sees 360 windows a day at 10 s, so 0.002 remembers about 1.5
	// days of that hour.
	SeasonAlpha float64 `yaml:"season_alpha"`
	// HuberK clips a residual to K spreads before it updates anything, so
	// one spike moves the level by at most Alpha*K spreads (robustness of
	// a median at the cost of an EWMA).
	HuberK float64 `yaml:"huber_k"`
	// MinSpread (log2 units) is the smallest spread a score divides by:
	// 0.15 is about 11 %, so a perfectly flat series does not turn every
	// wobble into a huge score.
	MinSpread float64 `yaml:"min_spread"`
	// WarmupWindows: windows learned before the target may alert.
	WarmupWindows int `yaml:"warmup_windows"`
	// SlotMinSamples: windows a seasonal slot needs before its own spread
	// replaces the global one.
	SlotMinSamples int `yaml:"slot_min_samples"`
	// Timezone of the seasonal slots (IANA name), e.g. the customers'
	// business hours.
	Timezone string `yaml:"timezone"`
}

// DefaultConfig returns the defaults documented in docs/detection.md.
func DefaultConfig() Config {
	return Config{Alpha: 0.02, SpreadAlpha: 0.02, SeasonAlpha: 0.002, HuberK: 3, MinSpread: 0.15,
		WarmupWindows: 360, SlotMinSamples: 30, Timezone: "UTC"}
}

// Validate names the bad key under prefix.
func (c Config) Validate(prefix string) error {
	var errs []error
	for _, a := range []struct {
		k string
		v float64
	}{{"alpha", c.Alpha}, {"spread_alpha", c.SpreadAlpha}, {"season_alpha", c.SeasonAlpha}} {
		if !(a.v > 0 && a.v <= 1) {
			errs = append(errs, fmt.Errorf("%s.%s: %g is not in (0, 1]", prefix, a.k, a.v))
		}
	}
	if !(c.HuberK > 0) {
		errs = append(errs, fmt.Errorf("%s.huber_k: %g must be > 0", prefix, c.HuberK))
	}
	if !(c.MinSpread > 0) {
		errs = append(errs, fmt.Errorf("%s.min_spread: %g must be > 0", prefix, c.MinSpread))
	}
	if c.WarmupWindows < 1 {
		errs = append(errs, fmt.Errorf("%s.warmup_windows: %d must be >= 1", prefix, c.WarmupWindows))
	}
	if c.SlotMinSamples < 1 || c.SlotMinSamples > 255 {
		errs = append(errs, fmt.Errorf("%s.slot_min_samples: %d is not in 1..255", prefix, c.SlotMinSamples))
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		errs = append(errs, fmt.Errorf("%s.timezone: %w", prefix, err))
	}
	return errors.Join(errs...)
}

// Model applies a Config; it holds no per-target state.
type Model struct {
	cfg Config
	loc *time.Location
}

// NewModel validates cfg.
func NewModel(cfg Config) (*Model, error) {
	if err := cfg.Validate("baseline"); err != nil {
		return nil, err
	}
	loc, _ := time.LoadLocation(cfg.Timezone)
	return &Model{cfg: cfg, loc: loc}, nil
}

// Config returns the model's configuration.
func (m *Model) Config() Config { return m.cfg }

// Slot returns the seasonal slot of an event time (ns).
func (m *Model) Slot(ns int64) int {
	t := time.Unix(0, ns).In(m.loc)
	s := t.Hour()
	if wd := t.Weekday(); wd == time.Saturday || wd == time.Sunday {
		s += Slots / 2
	}
	return s
}

// Warm reports whether the target has learned enough to alert.
func (m *Model) Warm(s *State) bool { return s.N >= uint32(m.cfg.WarmupWindows) }

// Expectation is the baseline's view of one metric in one slot.
type Expectation struct {
	Expected float64 // linear units of the metric
	Spread   float64 // robust spread in linear units (approximate)
	Score    float64 // robust units above (+) or below (-) expected
}

func lg(v float64) float64 {
	if v < 0 || math.IsNaN(v) {
		v = 0
	}
	return math.Log2(1 + v)
}

func (m *Model) levelSpread(s *State, i, slot int) (level, spread float64) {
	level = float64(s.Global[i].Level)
	spread = float64(s.Global[i].Spread)
	if i < NumSeasonal && slot >= 0 && slot < Slots && s.SlotN[slot] > 0 {
		c := s.Season[i][slot]
		level += float64(c.Level)
		if int(s.SlotN[slot]) >= m.cfg.SlotMinSamples {
			spread = float64(c.Spread)
		}
	}
	return level, max(spread, m.cfg.MinSpread)
}

// Score returns the expectation and score of every metric for values
// observed in slot.
func (m *Model) Score(s *State, slot int, v *window.Values) [window.NumMetrics]Expectation {
	var out [window.NumMetrics]Expectation
	for i := range v {
		level, spread := m.levelSpread(s, i, slot)
		exp := math.Exp2(level) - 1
		out[i] = Expectation{Expected: exp, Spread: (exp + 1) * (math.Exp2(spread) - 1),
			Score: (lg(v[i]) - level) / spread}
	}
	return out
}

// Learn folds one normal window's values into the baseline.
func (m *Model) Learn(s *State, slot int, v *window.Values) {
	n := float64(s.N)
	// Early on, plain running means (1/(n+1)) converge fast; afterwards
	// the configured EWMA weights take over.
	alpha := max(m.cfg.Alpha, 1/(n+1))
	salpha := max(m.cfg.SpreadAlpha, 1/(n+1))
	warming := s.N < 10
	for i := range v {
		x := lg(v[i])
		g := &s.Global[i]
		if s.N == 0 {
			g.Level, g.Spread = float32(x), 0
			continue
		}
		level, spread := m.levelSpread(s, i, slot)
		r := x - level
		if !warming {
			c := m.cfg.HuberK * spread
			r = max(-c, min(c, r))
		}
		g.Level += float32(alpha * r)
		g.Spread += float32(salpha * (1.2533*math.Abs(r) - float64(g.Spread))) // E|r| = 0.798 sigma
		if i < NumSeasonal && slot >= 0 && slot < Slots {
			c := &s.Season[i][slot]
			// The offset learns, slowly, what the fast level misses in
			// this slot (e.g. the lag behind a steep morning ramp). Only
			// the slow rate: a fast start would let offset and level
			// split the same residual arbitrarily, and the next slot,
			// without that offset, would be off by it.
			e := x - float64(g.Level) - float64(c.Level)
			lim := m.cfg.HuberK * spread
			e = max(-lim, min(lim, e))
			c.Level += float32(m.cfg.SeasonAlpha * e * boolf(!warming))
			// Spreads may start fast: they are not shared with the level.
			a := max(m.cfg.SeasonAlpha, 1/(float64(s.SlotN[slot])+1))
			c.Spread += float32(a * (1.2533*math.Abs(r) - float64(c.Spread)))
		}
	}
	if slot >= 0 && slot < Slots && s.SlotN[slot] < math.MaxUint8 {
		s.SlotN[slot]++
	}
	s.N++
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
