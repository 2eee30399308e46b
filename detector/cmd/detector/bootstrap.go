package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/packetworks/flowsentry/detector/bootstrap"
	"github.com/packetworks/flowsentry/detector/service"
	"github.com/packetworks/flowsentry/schemas/telemetry"
)

// devAnalystPassword is deploy/clickhouse's password for flowsentry_analyst
// on a developer machine; used only when the environment variable is unset
// and every ClickHouse address is loopback (as the sink does for its user).
const devAnalystPassword = "analyst-dev"

// bootstrapCommand runs `detector bootstrap`; it returns the exit code.
func bootstrapCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("detector bootstrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: detector bootstrap -config detector.yaml --from-clickhouse --days N [--dry-run] [--force]\n\n"+
			"Learns baselines from the flow history in ClickHouse and writes them to the detector-state topic,\n"+
			"so that detectors alert at once instead of after warm-up. Run it with the detectors stopped.")
		fs.PrintDefaults()
	}
	path := fs.String("config", "", "detector YAML file (defaults when empty)")
	fromCH := fs.Bool("from-clickhouse", false, "read the history from ClickHouse (the clickhouse section); required")
	days := fs.Int("days", 0, fmt.Sprintf("days of history before now to learn from (1..%d)", bootstrap.MaxDays))
	dry := fs.Bool("dry-run", false, "read and learn, print the summary, write nothing")
	force := fs.Bool("force", false, "replace existing detector state (the detector has already run)")
	perQuery := fs.Int("rows-per-query", bootstrap.DefaultRowsPerQuery, "about this many flows per sorted query (ClickHouse sort memory)")
	customers := fs.String("customer", "", "comma-separated customer ids: learn only these (default all)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var bad []string
	if fs.NArg() > 0 {
		bad = append(bad, fmt.Sprintf("unexpected arguments %q", fs.Args()))
	}
	if !*fromCH {
		bad = append(bad, "--from-clickhouse is required (ClickHouse is the only history source)")
	}
	if *days < 1 || *days > bootstrap.MaxDays {
		bad = append(bad, fmt.Sprintf("--days %d is not in 1..%d", *days, bootstrap.MaxDays))
	}
	if *perQuery < 1000 {
		bad = append(bad, fmt.Sprintf("--rows-per-query %d must be >= 1000", *perQuery))
	}
	if len(bad) > 0 {
		fmt.Fprintln(stderr, "detector bootstrap: "+strings.Join(bad, "; "))
		fs.Usage()
		return 2
	}
	cfg, err := service.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, "detector: invalid configuration:\n"+err.Error())
		return 2
	}
	log := telemetry.Logger("detector-bootstrap", cfg.LogLevel)
	limits, err := cfg.Limits()
	if err != nil {
		fmt.Fprintln(stderr, "detector bootstrap:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	chc := cfg.ClickHouse
	if chc.Password.Env != "" && os.Getenv(chc.Password.Env) == "" && chc.Password.File == "" && loopback(chc.Addr) {
		log.Warn("ClickHouse password variable unset; using the local development password", "env", chc.Password.Env)
		_ = os.Setenv(chc.Password.Env, devAnalystPassword)
	}
	conn, err := chc.Open(ctx, "clickhouse")
	if err != nil {
		fmt.Fprintln(stderr, "detector bootstrap:", err)
		return 1
	}
	defer conn.Close()
	var only []string
	for _, c := range strings.Split(*customers, ",") {
		if c = strings.TrimSpace(c); c != "" {
			only = append(only, c)
		}
	}
	job := bootstrap.Job{
		Replay: bootstrap.Replay{Engine: cfg.Engine, Baseline: cfg.Baseline, Classify: cfg.Classify, Limits: limits},
		Kafka:  cfg.Kafka, Worker: cfg.Worker, Days: *days, Force: *force, DryRun: *dry, Log: log,
	}
	sum, err := job.Run(ctx, &bootstrap.ClickHouse{Conn: conn, Database: chc.Database,
		Customers: only, RowsPerQuery: *perQuery})
	if sum != nil {
		sum.Print(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "detector bootstrap:", err)
		return 1
	}
	return 0
}

// loopback reports whether every address is on this machine.
func loopback(addrs []string) bool {
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return false
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return len(addrs) > 0
}
