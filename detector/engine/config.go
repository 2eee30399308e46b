// Package engine is the detector's core, free of Kafka: it folds flows into
// per-target windows on event time, closes windows as the watermark passes,
// scores them against the baselines, runs classification and emits events
// and baseline snapshots. One Engine is driven by one goroutine.
package engine

import (
	"errors"
	"fmt"
	"net/netip"
)

// Config is the "engine" section of detector.yaml.
type Config struct {
	// WindowSeconds: evaluation window (1-second buckets rolled up).
	WindowSeconds int `yaml:"window_seconds"`
	// LatenessSeconds: how long after a window's end flows for it are still
	// accepted (exporters flush late). Later flows are counted and dropped.
	// Must be below WindowSeconds.
	LatenessSeconds int `yaml:"lateness_seconds"`
	// FutureToleranceSeconds: a flow whose end time lies this far after the
	// time the collector received it has a broken clock; its receive time
	// is used instead, so one bad exporter cannot jump the watermark.
	FutureToleranceSeconds int `yaml:"future_tolerance_seconds"`
	// MaxGapWindows: when event time jumps further than this (collector
	// outage, replay), the empty windows in between are skipped, not
	// evaluated: an outage is not a traffic drop.
	MaxGapWindows int `yaml:"max_gap_windows"`
	// IdleExpiryWindows: a target without traffic (and no open anomaly)
	// for this many windows is forgotten.
	IdleExpiryWindows int `yaml:"idle_expiry_windows"`
	// PartitionIdleSeconds: a partition that has read no flow for this
	// long (wall clock) stops holding its own watermark and follows the
	// slowest active partition, so its silent subnets' windows still
	// close. Longer than any normal pause of a partition's flows.
	PartitionIdleSeconds int `yaml:"partition_idle_seconds"`
	// SnapshotSeconds: event-time interval between baseline snapshots.
	SnapshotSeconds int `yaml:"snapshot_seconds"`
	// Allowlist: prefixes of known scanners, speed-test servers and the
	// like. Flows whose remote side (source of inbound, destination of
	// outbound traffic) is listed are not evidence.
	Allowlist []string `yaml:"allowlist"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{WindowSeconds: 10, LatenessSeconds: 5, FutureToleranceSeconds: 60, MaxGapWindows: 360,
		IdleExpiryWindows: 8640, PartitionIdleSeconds: 30, SnapshotSeconds: 300, Allowlist: []string{}}
}

// Validate names the bad key under prefix.
func (c Config) Validate(prefix string) error {
	var errs []error
	if c.WindowSeconds < 1 || c.WindowSeconds > 3600 {
		errs = append(errs, fmt.Errorf("%s.window_seconds: %d is not in 1..3600", prefix, c.WindowSeconds))
	}
	if c.LatenessSeconds < 0 || c.LatenessSeconds >= c.WindowSeconds {
		errs = append(errs, fmt.Errorf("%s.lateness_seconds: %d must be in 0..window_seconds-1", prefix, c.LatenessSeconds))
	}
	if c.FutureToleranceSeconds < 1 {
		errs = append(errs, fmt.Errorf("%s.future_tolerance_seconds: %d must be >= 1", prefix, c.FutureToleranceSeconds))
	}
	if c.MaxGapWindows < 1 {
		errs = append(errs, fmt.Errorf("%s.max_gap_windows: %d must be >= 1", prefix, c.MaxGapWindows))
	}
	if c.IdleExpiryWindows < 1 {
		errs = append(errs, fmt.Errorf("%s.idle_expiry_windows: %d must be >= 1", prefix, c.IdleExpiryWindows))
	}
	if c.PartitionIdleSeconds < 1 {
		errs = append(errs, fmt.Errorf("%s.partition_idle_seconds: %d must be >= 1", prefix, c.PartitionIdleSeconds))
	}
	if c.SnapshotSeconds < c.WindowSeconds {
		errs = append(errs, fmt.Errorf("%s.snapshot_seconds: %d must be >= window_seconds", prefix, c.SnapshotSeconds))
	}
	for i, p := range c.Allowlist {
		pp, err := netip.ParsePrefix(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.allowlist[%d]: %w", prefix, i, err))
		} else if pp.Masked() != pp {
			errs = append(errs, fmt.Errorf("%s.allowlist[%d]: %s has host bits set", prefix, i, p))
		}
	}
	return errors.Join(errs...)
}
