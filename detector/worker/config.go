// Package worker connects the engine to Kafka: it consumes the flows topic
// as one member of a consumer group (a subnet's flows always reach one
// worker, because producers partition by subnet), restores checkpointed
// state for newly assigned partitions before reading them, publishes
// anomaly events and baseline snapshots, and checkpoints state then
// commits offsets.
package worker

import (
	"errors"
	"fmt"

	"github.com/packetworks/flowsentry/schemas/dedup"
	"github.com/packetworks/flowsentry/schemas/topics"
)

// Topics names the topics the worker uses.
type Topics struct {
	Flows     string `yaml:"flows"`
	Anomalies string `yaml:"anomalies"`
	Baselines string `yaml:"baselines"`
	State     string `yaml:"state"`
}

// Config is the "worker" section of detector.yaml.
type Config struct {
	Group  string `yaml:"group"`
	Topics Topics `yaml:"topics"`
	// StartOffset for partitions the group never committed: "last" (a new
	// detector starts from now) or "first" (replay what Kafka holds).
	StartOffset string `yaml:"start_offset"`
	// CheckpointSeconds: wall-clock interval between checkpoints (state
	// written, then offsets committed). What a killed worker can lose.
	CheckpointSeconds int `yaml:"checkpoint_seconds"`
	// SessionTimeoutSeconds: how long the group waits for a silent member
	// before moving its partitions (the broker's minimum is usually 6).
	SessionTimeoutSeconds int `yaml:"session_timeout_seconds"`
	HeartbeatSeconds      int `yaml:"heartbeat_seconds"`
	// FetchMaxWaitMs bounds how long a fetch waits for data: it bounds
	// detection latency on quiet partitions.
	FetchMaxWaitMs int `yaml:"fetch_max_wait_ms"`
	// Dedup bounds the window of recently seen FlowBatch identities per
	// partition and producer, by which re-sent copies are dropped.
	Dedup dedup.Config `yaml:"dedup"`
}

// DefaultConfig returns the documented defaults.
func DefaultConfig() Config {
	return Config{Group: "flowsentry-detector",
		Topics:      Topics{Flows: topics.Flows, Anomalies: topics.Anomalies, Baselines: topics.Baselines, State: topics.DetectorState},
		StartOffset: "last", CheckpointSeconds: 30, SessionTimeoutSeconds: 10, HeartbeatSeconds: 2, FetchMaxWaitMs: 250,
		Dedup: dedup.DefaultConfig()}
}

// Validate names the bad key under prefix.
func (c Config) Validate(prefix string) error {
	var errs []error
	if c.Group == "" {
		errs = append(errs, fmt.Errorf("%s.group: required", prefix))
	}
	for k, v := range map[string]string{"flows": c.Topics.Flows, "anomalies": c.Topics.Anomalies,
		"baselines": c.Topics.Baselines, "state": c.Topics.State} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s.topics.%s: required", prefix, k))
		}
	}
	if c.StartOffset != "first" && c.StartOffset != "last" {
		errs = append(errs, fmt.Errorf("%s.start_offset: %q is not first or last", prefix, c.StartOffset))
	}
	if c.CheckpointSeconds < 1 {
		errs = append(errs, fmt.Errorf("%s.checkpoint_seconds: %d must be >= 1", prefix, c.CheckpointSeconds))
	}
	if c.SessionTimeoutSeconds < 6 {
		errs = append(errs, fmt.Errorf("%s.session_timeout_seconds: %d must be >= 6 (broker minimum)", prefix, c.SessionTimeoutSeconds))
	}
	if c.HeartbeatSeconds < 1 || c.HeartbeatSeconds*3 > c.SessionTimeoutSeconds {
		errs = append(errs, fmt.Errorf("%s.heartbeat_seconds: %d must be >= 1 and at most a third of the session timeout", prefix, c.HeartbeatSeconds))
	}
	if c.FetchMaxWaitMs < 10 || c.FetchMaxWaitMs > 10000 {
		errs = append(errs, fmt.Errorf("%s.fetch_max_wait_ms: %d is not in 10..10000", prefix, c.FetchMaxWaitMs))
	}
	if err := c.Dedup.Validate(prefix + ".dedup"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
