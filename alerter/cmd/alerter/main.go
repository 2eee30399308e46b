// Command alerter turns the detector's anomaly events into incidents and
// notifications (Slack, PagerDuty, webhooks, the affected customer), keeps
// an audit trail in ClickHouse and serves the incident/silence API and the
// operator console.
//
//	alerter -config alerter.yaml          run
//	alerter -config alerter.yaml -check   validate the config and exit
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/packetworks/flowsentry/alerter/api"
	"github.com/packetworks/flowsentry/alerter/audit"
	"github.com/packetworks/flowsentry/alerter/config"
	"github.com/packetworks/flowsentry/alerter/console"
	"github.com/packetworks/flowsentry/alerter/console/history"
	"github.com/packetworks/flowsentry/alerter/consume"
	"github.com/packetworks/flowsentry/alerter/dispatch"
	"github.com/packetworks/flowsentry/alerter/notify"
	"github.com/packetworks/flowsentry/alerter/route"
	"github.com/packetworks/flowsentry/alerter/state"
	"github.com/packetworks/flowsentry/schemas/inventory"
	"github.com/packetworks/flowsentry/schemas/telemetry"
)

func main() {
	path := flag.String("config", "alerter.yaml", "YAML config file")
	check := flag.Bool("check", false, "validate the config (and resolve secrets) and exit")
	flag.Parse()
	if err := run(*path, *check); err != nil {
		fmt.Fprintln(os.Stderr, "alerter:", err)
		os.Exit(1)
	}
}

func run(path string, check bool) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	log := telemetry.Logger("alerter", cfg.LogLevel)
	var dir notify.Directory
	if cfg.Inventory.Path != "" {
		inv, err := inventory.Load(cfg.Inventory.Path)
		if err != nil {
			return err
		}
		dir = inv
	}
	tree, _ := route.Compile(cfg.Route, receiverNames(cfg))
	rules, _ := route.CompileInhibitRules(cfg.InhibitRules)
	limiters := &notify.Limiters{}
	var receivers []*notify.Receiver
	for i, rc := range cfg.Receivers {
		r, err := rc.Build(fmt.Sprintf("receivers[%d]", i), notify.BuildOptions{Links: cfg.Links, Directory: dir,
			Retry: cfg.Retry, Limiters: limiters})
		if err != nil {
			return err
		}
		receivers = append(receivers, r)
	}
	tokens, err := api.LoadTokens(cfg.API.TokensFile, os.Getenv(cfg.API.TokensEnv))
	if err != nil {
		return err
	}
	if cfg.API.TokensFile != "" {
		if err := api.FileIsPrivate(cfg.API.TokensFile); err != nil {
			log.Warn("tokens file permissions", "err", err)
		}
	}
	if tokens.Len() == 0 {
		log.Warn("no API tokens configured: every API call will be refused")
	}
	var chOpts *clickhouse.Options
	if cfg.Audit.Enabled {
		if chOpts, err = cfg.ClickHouse.Options("clickhouse"); err != nil {
			return err
		}
	}
	sec, err := cfg.Kafka.Resolve("kafka")
	if err != nil {
		return err
	}
	if cfg.Console.Enabled {
		// The console is not worth refusing to page for: without its
		// password it serves 503s on its ClickHouse endpoints only.
		if _, err := cfg.Console.ClickHouse.Options("console.clickhouse"); err != nil {
			log.Warn("console: no ClickHouse connection, its charts and history will answer 503", "err", err)
		}
	}
	if check {
		fmt.Println("config OK:", len(receivers), "receivers,", len(rules), "inhibit rules,", len(cfg.Silences), "silences")
		return nil
	}

	tel := telemetry.NewServer()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var rec audit.Recorder = audit.Discard{}
	var aw *audit.Writer
	if cfg.Audit.Enabled {
		// Opened lazily and re-opened after errors: ClickHouse down at
		// start must not keep the alerter from paging.
		aw = audit.NewWriter(cfg.Audit, func(context.Context) (driver.Conn, error) { return clickhouse.Open(chOpts) },
			cfg.Instance, tel.Registry, log)
		rec = aw
	}
	engine, err := dispatch.New(dispatch.Options{Config: cfg.Incidents, Tree: tree, Inhibit: rules, Receivers: receivers,
		Silences: cfg.Silences, Store: &state.File{Path: cfg.State.Path}, DeadLetterPath: cfg.State.DeadLetterPath,
		Audit: rec, Registerer: tel.Registry, Log: log})
	if err != nil {
		return err
	}
	reader := consume.NewReader(cfg.Consumer, cfg.Kafka.Brokers, sec.Dialer(cfg.Kafka.ClientID))
	consumer := consume.New(cfg.Consumer, reader, engine, tel.Registry, log)
	tel.Ready("kafka", consumer.Healthy)

	mux := tel.Handler()
	var apiOpts []api.Option
	if cfg.Console.Enabled {
		console.Register(mux)
		apiOpts = append(apiOpts, api.WithHistory(history.Open(cfg.Console.Config, tel.Registry)))
	}
	mux.Handle(api.Prefix, api.New(engine, tokens, log, apiOpts...))
	if err := tel.Start(cfg.Listen, mux, log); err != nil {
		return fmt.Errorf("listen: %w", err)
	}

	// Shutdown order: stop fetching and commit what settled, then stop
	// deliveries (unfinished ones are re-sent after restart), then save
	// the state and flush the audit trail.
	engineCtx, stopEngine := context.WithCancel(context.Background())
	auditCtx, stopAudit := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if aw != nil {
		wg.Add(1)
		go func() { defer wg.Done(); aw.Run(auditCtx) }()
	}
	engineDone := make(chan struct{})
	go func() { _ = engine.Run(engineCtx); close(engineDone) }()
	log.Info("alerter started", "topic", cfg.Consumer.Topic, "group", cfg.Consumer.GroupID, "receivers", len(receivers),
		"state", cfg.State.Path, "console", cfg.Console.Enabled)
	cerr := consumer.Run(ctx)
	log.Info("shutting down")
	stopEngine()
	<-engineDone
	if err := engine.Persist(); err != nil {
		log.Error("final state save failed", "err", err)
	}
	stopAudit()
	wg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tel.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", "err", err)
	}
	return cerr
}

func receiverNames(cfg config.Config) []string {
	var out []string
	for _, r := range cfg.Receivers {
		out = append(out, r.Name)
	}
	return out
}
