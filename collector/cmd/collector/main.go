// Command collector receives NetFlow v5/v9, IPFIX and sFlow v5, tags each
// flow with customer, subnet and direction, and produces FlowBatch
// messages to Kafka. See docs/collector.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/packetworks/flowsentry/collector/config"
	"github.com/packetworks/flowsentry/collector/produce"
	"github.com/packetworks/flowsentry/collector/service"
	"github.com/packetworks/flowsentry/schemas/inventory"
	"github.com/packetworks/flowsentry/schemas/telemetry"
)

func main() {
	path := flag.String("config", "", "collector YAML config (see collector.example.yaml)")
	check := flag.Bool("check", false, "validate the config and inventory, then exit")
	flag.Parse()
	if err := run(*path, *check); err != nil {
		fmt.Fprintln(os.Stderr, "collector:", err)
		os.Exit(1)
	}
}

func run(path string, check bool) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	inv, err := inventory.Load(cfg.Inventory)
	if err != nil {
		return err
	}
	if check {
		fmt.Println("config ok")
		return nil
	}
	log := telemetry.Logger("collector", cfg.LogLevel)
	w, err := produce.NewKafkaWriter(cfg.Kafka, produce.KafkaConfig{Topic: cfg.Produce.Topic,
		Compression: cfg.Produce.Compression, BatchBytes: cfg.Produce.BatchBytes, WriteTimeout: cfg.Produce.WriteTimeout})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := telemetry.NewServer()
	svc, err := service.New(ctx, cfg, inv, w, srv.Registry, log)
	if err != nil {
		return err
	}
	srv.Ready("kafka", svc.Ready)
	if err := srv.Start(cfg.HTTPAddr, srv.Handler(), log); err != nil {
		return fmt.Errorf("http_addr: %w", err)
	}
	err = svc.Run(ctx)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	log.Info("stopped", "err", err)
	return err
}
