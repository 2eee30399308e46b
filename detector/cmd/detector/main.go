// Command detector reads flows from Kafka, learns per-subnet baselines and
// publishes anomaly events. Usage: detector -config detector.yaml [-check]
//
// detector bootstrap -config detector.yaml --from-clickhouse --days N
// [--dry-run] [--force] learns the baselines from the flow history in
// ClickHouse instead (see docs/detection.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/packetworks/flowsentry/detector/service"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bootstrap" {
		os.Exit(bootstrapCommand(os.Args[2:], os.Stdout, os.Stderr))
	}
	path := flag.String("config", "", "detector YAML file (defaults when empty)")
	check := flag.Bool("check", false, "validate the configuration and exit")
	flag.Parse()
	cfg, err := service.Load(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "detector: invalid configuration:\n"+err.Error())
		os.Exit(2)
	}
	if *check {
		fmt.Println("configuration ok")
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := service.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "detector:", err)
		os.Exit(1)
	}
}
