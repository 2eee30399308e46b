// Command sink is Flowsentry's ClickHouse sink: it reads the flows,
// anomalies and baselines topics and writes flowsentry.flows, alerts and
// baselines, and enforces the tables' retention.
//
//	sink -config alerter/sink.example.yaml
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/packetworks/flowsentry/alerter/sink"
	"github.com/packetworks/flowsentry/alerter/sink/retention"
	"github.com/packetworks/flowsentry/alerter/sink/store"
	"github.com/packetworks/flowsentry/schemas/config"
	"github.com/packetworks/flowsentry/schemas/telemetry"
)

// devWriterPassword is deploy/clickhouse's password for flowsentry_writer
// on a developer machine; used only when the environment variable is unset
// and every ClickHouse address is loopback.
const devWriterPassword = "writer-dev"

func main() {
	path := flag.String("config", "", "YAML configuration file (defaults when empty)")
	check := flag.Bool("check", false, "validate the configuration and exit")
	flag.Parse()
	cfg := sink.DefaultConfig()
	if err := config.Load(*path, &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "config %s:\n%v\n", *path, err)
		os.Exit(2)
	}
	if *check {
		fmt.Println("config ok")
		return
	}
	log := telemetry.Logger("sink", cfg.LogLevel)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("sink stopped", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg sink.Config, log *slog.Logger) error {
	sec, err := cfg.Kafka.Resolve("kafka")
	if err != nil {
		return err
	}
	conn, err := openClickHouse(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer conn.Close()

	srv := telemetry.NewServer()
	metrics := sink.NewMetrics(srv.Registry)
	st := store.New(conn, cfg.ClickHouse.Database)
	dead := sink.NewKafkaDeadLetters(cfg.Kafka.Brokers, cfg.Consumer.DeadLetterTopic, sec.Transport(cfg.Kafka.ClientID))
	defer dead.Close()
	s := sink.New(cfg, st, dead, sec.Dialer(cfg.Kafka.ClientID), sec.Transport(cfg.Kafka.ClientID), metrics, log)
	srv.Ready("kafka", s.Ready)
	srv.Ready("clickhouse", func() error {
		pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return conn.Ping(pctx)
	})
	if err := srv.Start(cfg.HTTPAddr, srv.Handler(), log); err != nil {
		return fmt.Errorf("http_addr: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()

	job := &retention.Job{Conn: conn, DB: cfg.ClickHouse.Database, Cfg: cfg.Retention, Log: log,
		OnDrop:  func(d retention.Dropped) { metrics.Retention.WithLabelValues(d.Table).Inc() },
		OnError: func(t string, _ error) { metrics.RetentionErr.WithLabelValues(t).Inc() }}
	go job.Run(ctx)

	log.Info("sink started", "group", cfg.Consumer.GroupID, "flows", cfg.Consumer.FlowsTopic,
		"anomalies", cfg.Consumer.AnomaliesTopic, "baselines", cfg.Consumer.BaselinesTopic,
		"clickhouse", cfg.ClickHouse.Addr, "user", cfg.ClickHouse.Username, "max_rows", cfg.Batch.MaxRows,
		"max_wait", cfg.Batch.MaxWait)
	err = s.Run(ctx)
	if err == nil {
		log.Info("sink stopped: offsets of written batches are committed; unwritten ones will be read again")
	}
	return err
}

// openClickHouse connects as the configured user. A server that is down is
// waited for (the sink then catches up from Kafka); a refused password or
// user is fatal, since waiting cannot fix it.
func openClickHouse(ctx context.Context, cfg sink.Config, log *slog.Logger) (driver.Conn, error) {
	chc := cfg.ClickHouse
	if chc.Password.Env != "" && os.Getenv(chc.Password.Env) == "" && chc.Password.File == "" && allLoopback(chc.Addr) {
		log.Warn("ClickHouse password variable unset; using the local development password", "env", chc.Password.Env)
		_ = os.Setenv(chc.Password.Env, devWriterPassword)
	}
	opts, err := chc.Options("clickhouse")
	if err != nil {
		return nil, err
	}
	opts.MaxOpenConns = 4
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %w", err)
	}
	backoff := cfg.Retry.InitialBackoff
	for {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := conn.Ping(pctx)
		cancel()
		if err == nil {
			return conn, nil
		}
		var ex *clickhouse.Exception
		if errors.As(err, &ex) && (ex.Code == 516 || ex.Code == 192 || ex.Code == 193 || ex.Code == 194 || ex.Code == 195) {
			conn.Close()
			return nil, fmt.Errorf("clickhouse: user %q refused: %w", chc.Username, err)
		}
		log.Warn("ClickHouse not reachable, waiting", "addr", chc.Addr, "backoff", backoff, "err", err)
		select {
		case <-ctx.Done():
			conn.Close()
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, cfg.Retry.MaxBackoff)
	}
}

func allLoopback(addrs []string) bool {
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return false
		}
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return len(addrs) > 0
}
