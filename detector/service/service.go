// Package service is the detector process: it loads and validates
// detector.yaml, wires telemetry, the inventory, the engine and the Kafka
// worker, and runs until its context ends.
package service

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/packetworks/flowsentry/detector/baseline"
	"github.com/packetworks/flowsentry/detector/classify"
	"github.com/packetworks/flowsentry/detector/engine"
	"github.com/packetworks/flowsentry/detector/worker"
	"github.com/packetworks/flowsentry/schemas/chclient"
	"github.com/packetworks/flowsentry/schemas/config"
	"github.com/packetworks/flowsentry/schemas/inventory"
	"github.com/packetworks/flowsentry/schemas/kafkaclient"
	"github.com/packetworks/flowsentry/schemas/secret"
	"github.com/packetworks/flowsentry/schemas/telemetry"
)

// Config is detector.yaml.
type Config struct {
	// Instance names this detector in events (default: host name).
	Instance string `yaml:"instance"`
	LogLevel string `yaml:"log_level"`
	HTTPAddr string `yaml:"http_addr"`
	// Inventory: customer inventory file, for per-customer floors and
	// ceilings. Optional.
	Inventory string             `yaml:"inventory"`
	Kafka     kafkaclient.Config `yaml:"kafka"`
	Worker    worker.Config      `yaml:"worker"`
	Engine    engine.Config      `yaml:"engine"`
	Baseline  baseline.Config    `yaml:"baseline"`
	Classify  classify.Config    `yaml:"classify"`
	// ClickHouse is read only by `detector bootstrap --from-clickhouse`
	// (flow history); the detector itself never connects to it.
	ClickHouse chclient.Config `yaml:"clickhouse"`
}

// Default returns the configuration used for keys a file leaves out.
func Default() Config {
	return Config{LogLevel: "info", HTTPAddr: ":9103", Kafka: kafkaclient.Default(), Worker: worker.DefaultConfig(),
		Engine: engine.DefaultConfig(), Baseline: baseline.DefaultConfig(), Classify: classify.DefaultConfig(),
		ClickHouse: defaultClickHouse()}
}

// defaultClickHouse: reading history needs no more than the read-only
// analyst user.
func defaultClickHouse() chclient.Config {
	c := chclient.Default()
	c.Username, c.Password = "flowsentry_analyst", secret.Ref{Env: "FLOWSENTRY_CH_ANALYST_PASSWORD"}
	return c
}

// Load reads path over the defaults and validates.
func Load(path string) (Config, error) {
	c := Default()
	if err := config.Load(path, &c); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate checks every section; errors name the key.
func (c Config) Validate() error {
	var errs []error
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level: %q is not debug, info, warn or error", c.LogLevel))
	}
	if c.HTTPAddr == "" {
		errs = append(errs, errors.New("http_addr: required"))
	}
	errs = append(errs, c.Kafka.Validate("kafka"), c.Worker.Validate("worker"), c.Engine.Validate("engine"),
		c.Baseline.Validate("baseline"), c.Classify.Validate("classify"), c.ClickHouse.Validate("clickhouse"))
	return errors.Join(errs...)
}

// Limits returns the inventory's per-customer floors and ceilings (nil
// without an inventory): the worker and a bootstrap classify alike.
func (c Config) Limits() (engine.Limits, error) {
	if c.Inventory == "" {
		return nil, nil
	}
	inv, err := inventory.Load(c.Inventory)
	if err != nil {
		return nil, err
	}
	return func(id string) (map[string]float64, map[string]float64) {
		if cu := inv.Customer(id); cu != nil {
			return cu.Floors, cu.Ceilings
		}
		return nil, nil
	}, nil
}

// Run runs the detector until ctx ends.
func Run(ctx context.Context, c Config) error {
	log := telemetry.Logger("detector", c.LogLevel)
	if c.Instance == "" {
		c.Instance, _ = os.Hostname()
	}
	limits, err := c.Limits()
	if err != nil {
		return err
	}
	srv := telemetry.NewServer()
	em := engine.NewMetrics(srv.Registry)
	w, err := worker.New(c.Worker, c.Kafka, log, srv.Registry, func(sink engine.Sink) (*engine.Engine, error) {
		return engine.New(c.Engine, c.Baseline, c.Classify, sink, limits, c.Instance, em)
	})
	if err != nil {
		return err
	}
	srv.Ready("kafka", w.Ready)
	if err := srv.Start(c.HTTPAddr, srv.Handler(), log); err != nil {
		return fmt.Errorf("http_addr: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("detector starting", "instance", c.Instance, "group", c.Worker.Group, "window_s", c.Engine.WindowSeconds)
	return w.Run(ctx)
}
