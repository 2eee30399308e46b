package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/packetworks/flowsentry/alerter/notify"
	"github.com/packetworks/flowsentry/benchmarks/export"
	"github.com/packetworks/flowsentry/benchmarks/scenario"
	"github.com/packetworks/flowsentry/collector/flowgen"
	"github.com/packetworks/flowsentry/schemas/inventory"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"
)

// runConfig is the "demo run" command line.
type runConfig struct {
	scenario, inventory, detectorConfig string
	brokers, topicPrefix                string
	netflow, ipfix, sflow               string
	replayAddr                          string
	historyRate                         float64
	receivers                           string
	collector, detector, sink, alerter  string
	alerterTokenEnv                     string
	chHTTP, chUser, chPasswordEnv       string
	localSlack, localPagerDuty          bool
	settle                              time.Duration
}

func parseRun(args []string) runConfig {
	var c runConfig
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	fs.StringVar(&c.scenario, "scenario", "deploy/demo/scenario.yaml", "scenario YAML (benchmarks/scenario)")
	fs.StringVar(&c.inventory, "inventory", "deploy/demo/inventory.yaml", "customer inventory the services use (checked against the scenario)")
	fs.StringVar(&c.detectorConfig, "detector-config", "", "detector YAML (window and warm-up length, for the explanations)")
	fs.StringVar(&c.brokers, "brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	fs.StringVar(&c.topicPrefix, "topic-prefix", "", "prefix of the run's topics (demo topics -create)")
	fs.StringVar(&c.netflow, "netflow", "127.0.0.1:12055", "collector NetFlow v9 UDP address")
	fs.StringVar(&c.ipfix, "ipfix", "127.0.0.1:14739", "collector IPFIX UDP address")
	fs.StringVar(&c.sflow, "sflow", "127.0.0.1:16343", "collector sFlow UDP address")
	fs.StringVar(&c.replayAddr, "replay-addr", "127.0.100.9", "source address of the history replay exporter")
	fs.Float64Var(&c.historyRate, "history-rate", 40000, "history replay pace, flow records per second")
	fs.StringVar(&c.receivers, "receivers", "http://127.0.0.1:19106", "local receivers (demo receivers) base URL")
	fs.StringVar(&c.collector, "collector", "http://127.0.0.1:19102", "collector metrics base URL")
	fs.StringVar(&c.detector, "detector", "http://127.0.0.1:19103", "detector metrics base URL")
	fs.StringVar(&c.sink, "sink", "http://127.0.0.1:19104", "sink metrics base URL")
	fs.StringVar(&c.alerter, "alerter", "http://127.0.0.1:19105", "alerter base URL (metrics and API)")
	fs.StringVar(&c.alerterTokenEnv, "alerter-token-env", "DEMO_ALERTER_TOKEN", "environment variable holding a read-only alerter API token")
	fs.StringVar(&c.chHTTP, "clickhouse-http", "http://127.0.0.1:8123", "ClickHouse HTTP interface")
	fs.StringVar(&c.chUser, "clickhouse-user", "flowsentry_analyst", "ClickHouse user of the analyst queries")
	fs.StringVar(&c.chPasswordEnv, "clickhouse-password-env", "FLOWSENTRY_CH_ANALYST_PASSWORD", "environment variable holding its password (unset: analyst-dev)")
	fs.BoolVar(&c.localSlack, "local-slack", true, "Slack messages go to the local receiver (false: a real webhook)")
	fs.BoolVar(&c.localPagerDuty, "local-pagerduty", true, "PagerDuty events go to the local receiver (false: the real Events API)")
	fs.DurationVar(&c.settle, "settle", 20*time.Second, "after the last incident resolved: longest wait for its notifications")
	_ = fs.Parse(args)
	return c
}

// printer serialises the demo's output; every line carries the time since
// the demo started.
type printer struct {
	mu sync.Mutex
	w  io.Writer
	t0 time.Time
}

func (p *printer) at(t time.Time) string {
	d := t.Sub(p.t0).Round(100 * time.Millisecond)
	return fmt.Sprintf("[+%02d:%04.1f]", int(d.Minutes()), (d % time.Minute).Seconds())
}

// say prints a block: the first line with the time, the others indented.
func (p *printer) say(format string, a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := fmt.Sprintf(format, a...)
	first, rest, _ := strings.Cut(s, "\n")
	fmt.Fprintf(p.w, "%s %s\n", p.at(time.Now()), first)
	if rest != "" {
		fmt.Fprintln(p.w, indent(rest))
	}
}

// attackState follows one scripted attack through the pipeline.
type attackState struct {
	a                 *scenario.Attack
	began, ended      time.Time // wall clock, when traffic started/stopped
	incident          string
	severity          string
	opened, resolved  time.Time // START / END read from the anomalies topic
	firstNotification time.Time
	firstVia          string
	notified          map[string]bool // kinds seen in the local receivers
	analyst           bool
}

type demo struct {
	cfg     runConfig
	sc      *scenario.Scenario
	p       *printer
	gen     *scenario.Generator
	window  time.Duration
	warmup  int
	token   string
	ch      clickhouse
	attacks []*attackState
	byID    map[string]*attackState
	// unexpected incidents: id -> description
	unexpected map[string]string
	events     chan any

	mu         sync.Mutex
	snapshots  map[string]*pb.BaselineSnapshot // subnet|direction -> latest
	sent       []uint64                        // records per exporter (live)
	historyN   uint64
	historyDur time.Duration
	runStart   time.Time
	liveStart  time.Time
	rejected   int
}

type attackEdge struct {
	i     int
	begin bool
	at    time.Time
}

type analystResult struct {
	st   *attackState
	sql  string
	text string
	err  error
	took time.Duration
}

// runDemo is "demo run": it drives the scenario through the running
// pipeline and exits non-zero if an expected incident did not happen.
func runDemo(args []string) error {
	cfg := parseRun(args)
	sc, err := scenario.Load(cfg.scenario)
	if err != nil {
		return err
	}
	inv, err := inventory.Load(cfg.inventory)
	if err != nil {
		return err
	}
	if err := checkInventory(sc, inv); err != nil {
		return err
	}
	if cfg.topicPrefix == "" {
		return errors.New("-topic-prefix: required (the run's topics, see demo topics)")
	}
	pw := os.Getenv(cfg.chPasswordEnv)
	if pw == "" {
		pw = "analyst-dev"
	}
	d := &demo{cfg: cfg, sc: sc, p: &printer{w: os.Stdout, t0: time.Now()}, window: 10 * time.Second, warmup: 360,
		token: os.Getenv(cfg.alerterTokenEnv), ch: clickhouse{base: cfg.chHTTP, user: cfg.chUser, password: pw},
		byID: map[string]*attackState{}, unexpected: map[string]string{}, events: make(chan any, 1024),
		snapshots: map[string]*pb.BaselineSnapshot{}, sent: make([]uint64, len(sc.Exporters)), runStart: time.Now()}
	if cfg.detectorConfig != "" {
		d.readDetectorConfig(cfg.detectorConfig)
	}
	for i := range sc.Attacks {
		d.attacks = append(d.attacks, &attackState{a: &sc.Attacks[i], notified: map[string]bool{}})
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return d.run(ctx)
}

// checkInventory makes sure the services' inventory gives every scenario
// subnet to the same customer with the prefix as its subnet key.
func checkInventory(sc *scenario.Scenario, inv *inventory.Inventory) error {
	var errs []error
	for _, c := range sc.Customers {
		for _, sn := range c.Subnets {
			p := sn.ParsedPrefix()
			key, m, ok := inv.SubnetKey(p.Addr())
			switch {
			case !ok || m.Customer == nil:
				errs = append(errs, fmt.Errorf("inventory: %s (customer %s in the scenario) is not a customer prefix", p, c.ID))
			case m.Customer.ID != c.ID:
				errs = append(errs, fmt.Errorf("inventory: %s belongs to %s, the scenario says %s", p, m.Customer.ID, c.ID))
			case key != p:
				errs = append(errs, fmt.Errorf("inventory: subnet key of %s is %s, the scenario expects %s", p, key, p))
			}
		}
	}
	return errors.Join(errs...)
}

// readDetectorConfig picks the window and warm-up length from the
// detector's YAML (for the explanations; defaults otherwise). Only these
// keys are read: the detector validates its own file strictly.
func (d *demo) readDetectorConfig(path string) {
	var c struct {
		Engine struct {
			WindowSeconds int `yaml:"window_seconds"`
		} `yaml:"engine"`
		Baseline struct {
			WarmupWindows int `yaml:"warmup_windows"`
		} `yaml:"baseline"`
	}
	b, err := os.ReadFile(path)
	if err != nil || yaml.Unmarshal(b, &c) != nil {
		return
	}
	if c.Engine.WindowSeconds > 0 {
		d.window = time.Duration(c.Engine.WindowSeconds) * time.Second
	}
	if c.Baseline.WarmupWindows > 0 {
		d.warmup = c.Baseline.WarmupWindows
	}
}

func (d *demo) run(ctx context.Context) error {
	d.intro()
	if err := d.waitReady(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	d.watchTopics(ctx)
	go d.pollFeed(ctx)

	senders, err := d.openSenders()
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range senders {
			_ = s.Close()
		}
	}()
	d.gen = scenario.NewGenerator(d.sc)
	if err := d.history(ctx, senders[len(senders)-1]); err != nil {
		return err
	}
	d.waitCaughtUp(ctx)
	d.printBaselines()

	live := time.Now()
	d.gen.StartLive(live)
	d.mu.Lock()
	d.liveStart = live
	d.mu.Unlock()
	deadline := live.Add(d.sc.LastEnd() + d.sc.Tail)
	d.p.say("LIVE traffic from now on, in real time: %s. Attacks are scheduled over the next %s; the demo ends when every incident is resolved and notified (at the latest %s).",
		d.exporterSummary(), d.sc.LastEnd().Round(time.Second), deadline.Sub(live).Round(time.Second))
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	trafficDone := make(chan error, 1)
	go func() { trafficDone <- d.live(trafficCtx, senders[:len(senders)-1]) }()

	go d.watchListeners(trafficCtx, senders)
	err = d.loop(ctx, deadline, stopTraffic)
	stopTraffic()
	if terr := <-trafficDone; terr != nil && err == nil {
		err = terr
	}
	if err != nil {
		return err
	}
	return d.summary(ctx)
}

func (d *demo) intro() {
	var b strings.Builder
	fmt.Fprintf(&b, "Flowsentry demo — scenario %q\n", d.sc.Name)
	if !d.cfg.localSlack {
		b.WriteString("Slack messages go to the real webhook in SLACK_WEBHOOK_URL (checked through the alerter's audit trail).\n")
	}
	if !d.cfg.localPagerDuty {
		b.WriteString("PagerDuty events go to the real Events API with PAGERDUTY_ROUTING_KEY (checked through the audit trail).\n")
	}
	b.WriteString("Customers (inventory deploy/demo/inventory.yaml) and how their traffic is exported:\n")
	for _, c := range d.sc.Customers {
		ex := d.sc.Exporters[c.ExporterIndex()]
		var nets []string
		for _, sn := range c.Subnets {
			nets = append(nets, fmt.Sprintf("%s (%s, %s in / %s out)", sn.Prefix, sn.Profile,
				notify.Rate(sn.InPPS, "pps"), notify.Rate(sn.OutPPS, "pps")))
		}
		fmt.Fprintf(&b, "  %-9s %-22s via %s (%s, sampling 1:%d from %s)\n      %s\n", c.ID, c.Name, ex.Name,
			protoName(ex.Protocol), ex.Sampling, ex.Address, strings.Join(nets, "\n      "))
	}
	b.WriteString("Scripted attacks (offsets from the start of live traffic):\n")
	for _, a := range d.sc.Attacks {
		fmt.Fprintf(&b, "  +%-4s %-28s %-14s %s, %s for %s → expect %s %s on %s\n", a.Start, a.Name, a.Kind, a.Target,
			notify.Rate(a.PPS, "pps"), a.Duration, a.Expect.Class, a.Expect.Direction, a.Subnet())
	}
	d.p.say("%s", strings.TrimRight(b.String(), "\n"))
}

func protoName(p string) string {
	return map[string]string{scenario.NetFlow9: "NetFlow v9", scenario.IPFIX: "IPFIX", scenario.SFlow: "sFlow v5"}[p]
}

func (d *demo) exporterSummary() string {
	var parts []string
	for _, e := range d.sc.Exporters {
		parts = append(parts, fmt.Sprintf("%s %s", e.Name, protoName(e.Protocol)))
	}
	return strings.Join(parts, ", ")
}

// waitReady waits for every service's /readyz (the detector is ready once
// its partitions are assigned and restored).
func (d *demo) waitReady(ctx context.Context) error {
	t0 := time.Now()
	for _, s := range []struct{ name, url string }{{"collector", d.cfg.collector}, {"sink", d.cfg.sink},
		{"detector", d.cfg.detector}, {"alerter", d.cfg.alerter}} {
		var err error
		for time.Since(t0) < 45*time.Second {
			if err = ready(ctx, s.url); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
		}
		if err != nil {
			return fmt.Errorf("%s not ready after 45 s: %w", s.name, err)
		}
	}
	d.p.say("collector, detector, sink and alerter are ready (%.1f s)", time.Since(t0).Seconds())
	return nil
}

// openSenders opens one UDP socket per exporter (bound to its address)
// plus the history replay exporter, last.
func (d *demo) openSenders() ([]*export.UDPSender, error) {
	var out []*export.UDPSender
	for i, e := range d.sc.Exporters {
		to := map[string]string{scenario.NetFlow9: d.cfg.netflow, scenario.IPFIX: d.cfg.ipfix, scenario.SFlow: d.cfg.sflow}[e.Protocol]
		s, err := export.NewUDPSender(d.sc.ExporterAddr(i), to)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	ra, err := netip.ParseAddr(d.cfg.replayAddr)
	if err != nil {
		return nil, fmt.Errorf("-replay-addr: %w", err)
	}
	s, err := export.NewUDPSender(ra, d.cfg.ipfix)
	if err != nil {
		return nil, err
	}
	return append(out, s), nil
}

// history sends the scenario's history (event times in the past) as fast
// as the pace allows, through one IPFIX replay exporter with one
// observation domain per original router (carrying its sampling rate).
// One socket keeps the records in event-time order all the way to the
// detector, which a fast replay needs: the detector drops flows more than
// its lateness behind the partition's newest one.
func (d *demo) history(ctx context.Context, s *export.UDPSender) error {
	if d.sc.History <= 0 {
		return nil
	}
	boot := time.Now().Add(-72 * time.Hour)
	var encs []*export.Encoder
	for i, e := range d.sc.Exporters {
		enc, err := export.NewEncoder(scenario.IPFIX, netip.Addr{}, uint32(100+i), e.Sampling, boot)
		if err != nil {
			return err
		}
		encs = append(encs, enc)
	}
	start := time.Now()
	from := start.Add(-d.sc.History).Truncate(time.Second)
	d.p.say("HISTORY: replaying %s of past traffic (event times %s–%s UTC, %d detector windows of %s) as IPFIX from %s, paced at %.0f flows/s.\nWhy: the detector learns a baseline per subnet and direction from EVENT time and only alerts after %d learned windows (%s of traffic).\nReplaying recorded history faster than real time warms the baselines in seconds; live traffic then continues where the history ends.",
		d.sc.History, from.UTC().Format("15:04:05"), start.UTC().Format("15:04:05"), int(d.sc.History/d.window), d.window,
		d.cfg.replayAddr, d.cfg.historyRate, d.warmup, time.Duration(d.warmup)*d.window)
	var recs []scenario.Record
	per := make([][]flowgen.Flow, len(encs))
	var n uint64
	cursor := from
	for {
		now := time.Now()
		if !cursor.Before(now.Add(-500 * time.Millisecond)) {
			break
		}
		next := cursor.Add(time.Second)
		if next.After(now) {
			next = now
		}
		recs = d.gen.Step(cursor, next, recs[:0])
		cursor = next
		byExporter(recs, per)
		for i, fl := range per {
			if len(fl) > 0 {
				if err := s.Send(encs[i].Datagrams(now, fl)); err != nil {
					return fmt.Errorf("history replay: %w", err)
				}
			}
		}
		n += uint64(len(recs))
		// Pace: never more than historyRate records per second.
		if ahead := time.Duration(float64(n)/d.cfg.historyRate*float64(time.Second)) - time.Since(start); ahead > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(ahead):
			}
		}
	}
	took := time.Since(start)
	d.mu.Lock()
	d.historyN, d.historyDur = n, took
	d.mu.Unlock()
	span := cursor.Sub(from)
	d.p.say("HISTORY sent: %d flow records covering %s of event time in %.1f s (%.0f× real time, %d datagrams)",
		n, span.Round(time.Second), took.Seconds(), span.Seconds()/took.Seconds(), s.Datagrams())
	return nil
}

// waitCaughtUp waits until the collector produced every history record and
// the detector read them all, so that live traffic meets warm baselines.
func (d *demo) waitCaughtUp(ctx context.Context) {
	t0 := time.Now()
	d.mu.Lock()
	want := float64(d.historyN)
	d.mu.Unlock()
	var produced, folded float64
	for time.Since(t0) < 60*time.Second {
		cm, err1 := scrape(ctx, d.cfg.collector)
		dm, err2 := scrape(ctx, d.cfg.detector)
		if err1 == nil && err2 == nil {
			produced = cm.Sum("collector_flows_produced_total")
			folded = dm.Sum("detector_flows_folded_total") + dm.Sum("detector_flows_dropped_total")
			if produced >= want && folded >= produced {
				d.p.say("pipeline caught up: collector produced %.0f flows to Kafka, detector read %.0f (%.1f s after the replay ended)",
					produced, folded, time.Since(t0).Seconds())
				if late := dm.Sum("detector_flows_dropped_total", `reason="late"`); late > 0 {
					d.p.say("WARNING: the detector dropped %.0f history flows as late", late)
				}
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(250 * time.Millisecond):
		}
	}
	d.p.say("WARNING: pipeline not caught up after 60 s: %.0f of %.0f history flows produced, %.0f read by the detector", produced, want, folded)
}

// printBaselines shows what the detector learned from the history: the
// latest baseline snapshot of every target.
func (d *demo) printBaselines() {
	time.Sleep(500 * time.Millisecond) // the last snapshots are published with the windows that close them
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.snapshots) == 0 {
		d.p.say("no baseline snapshot yet (engine.snapshot_seconds longer than the history?)")
		return
	}
	keys := make([]string, 0, len(d.snapshots))
	for k := range d.snapshots {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var rows [][]string
	for _, k := range keys {
		s := d.snapshots[k]
		row := []string{s.GetCustomer(), s.GetSubnet(), strings.ToLower(strings.TrimPrefix(s.GetDirection().String(), "DIRECTION_"))}
		var samples uint64
		for _, name := range []string{"pps", "bps", "distinct_dst"} {
			v := "-"
			for _, m := range s.GetMetrics() {
				if m.GetMetric() == name {
					v = notify.Rate(m.GetExpected(), map[string]string{"pps": "pps", "bps": "bps"}[name])
					samples = max(samples, m.GetSamples())
				}
			}
			row = append(row, v)
		}
		warm := "warm"
		if samples < uint64(d.warmup) {
			warm = fmt.Sprintf("warming (%d/%d)", samples, d.warmup)
		}
		row = append(row, fmt.Sprintf("%d", samples), warm)
		rows = append(rows, row)
	}
	d.p.say("BASELINES learned from the history (latest snapshot per target, topic %sbaselines):\n%s", d.cfg.topicPrefix,
		table([]string{"customer", "subnet", "direction", "expected pps", "expected bps", "distinct dst", "windows", "state"}, rows))
}

// live sends real-time traffic (and the attacks) until ctx ends.
func (d *demo) live(ctx context.Context, senders []*export.UDPSender) error {
	boot := time.Now().Add(-72 * time.Hour)
	var encs []*export.Encoder
	for i, e := range d.sc.Exporters {
		enc, err := export.NewEncoder(e.Protocol, d.sc.ExporterAddr(i), uint32(1+i), e.Sampling, boot)
		if err != nil {
			return err
		}
		encs = append(encs, enc)
	}
	live := d.gen.Live()
	began := make([]bool, len(d.sc.Attacks))
	ended := make([]bool, len(d.sc.Attacks))
	cursor := live
	var recs []scenario.Record
	per := make([][]flowgen.Flow, len(encs))
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		for i := range d.sc.Attacks {
			a := &d.sc.Attacks[i]
			if !began[i] && !now.Before(live.Add(a.Start)) {
				began[i] = true
				d.events <- attackEdge{i: i, begin: true, at: live.Add(a.Start)}
			}
			if !ended[i] && !now.Before(live.Add(a.End())) {
				ended[i] = true
				d.events <- attackEdge{i: i, begin: false, at: live.Add(a.End())}
			}
		}
		recs = d.gen.Step(cursor, now, recs[:0])
		cursor = now
		byExporter(recs, per)
		for i, fl := range per {
			if len(fl) == 0 {
				continue
			}
			if err := senders[i].Send(encs[i].Datagrams(now, fl)); err != nil {
				return fmt.Errorf("exporter %s: %w", d.sc.Exporters[i].Name, err)
			}
			d.mu.Lock()
			d.sent[i] += uint64(len(fl))
			d.mu.Unlock()
		}
	}
}

// watchListeners warns when a collector socket stops reading while the
// demo keeps sending to it (see deploy/demo/README.md, known limits): the
// incidents that follow would otherwise be a mystery.
func (d *demo) watchListeners(ctx context.Context, senders []*export.UDPSender) {
	listener := map[string]string{scenario.NetFlow9: "netflow", scenario.IPFIX: "ipfix", scenario.SFlow: "sflow"}
	sentBefore, recvBefore := map[string]uint64{}, map[string]float64{}
	warned := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
		m, err := scrape(ctx, d.cfg.collector)
		if err != nil {
			continue
		}
		sent := map[string]uint64{}
		for i, e := range d.sc.Exporters {
			sent[listener[e.Protocol]] += senders[i].Datagrams()
		}
		sent["ipfix"] += senders[len(senders)-1].Datagrams() // the replay
		for l, n := range sent {
			recv := m.Sum("collector_socket_datagrams_total", `listener="`+l+`"`)
			if n > sentBefore[l] && recv == recvBefore[l] && sentBefore[l] > 0 && !warned[l] {
				warned[l] = true
				d.p.say("WARNING: the collector's %s socket stopped reading (%d datagrams sent in 5 s, none received): the flows of its exporters no longer reach the detector", l, n-sentBefore[l])
			}
			sentBefore[l], recvBefore[l] = n, recv
		}
	}
}

// watchTopics reads the run's anomalies and baselines topics from the
// start (one reader per partition, no consumer group).
func (d *demo) watchTopics(ctx context.Context) {
	brokers := strings.Split(d.cfg.brokers, ",")
	read := func(topic string, partition int, handle func([]byte)) {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: partition,
			// kafka-go retries fetch timeouts by itself (they are frequent
			// on a loaded box); ReadMessage only fails for good.
			MinBytes: 1, MaxBytes: 10 << 20, MaxWait: time.Second})
		defer r.Close()
		failing := false // report an outage once, not every retry
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if !failing {
					fmt.Fprintf(os.Stderr, "demo: reading %s[%d] (retrying): %v\n", topic, partition, err)
				}
				failing = true
				time.Sleep(time.Second)
				continue
			}
			failing = false
			handle(m.Value)
		}
	}
	for p := range 4 {
		go read(d.cfg.topicPrefix+"anomalies", p, func(b []byte) {
			var ev pb.AnomalyEvent
			if proto.Unmarshal(b, &ev) == nil {
				d.events <- &ev
			}
		})
		go read(d.cfg.topicPrefix+"baselines", p, func(b []byte) {
			var s pb.BaselineSnapshot
			if proto.Unmarshal(b, &s) == nil {
				d.mu.Lock()
				d.snapshots[s.GetSubnet()+"|"+s.GetDirection().String()] = &s
				d.mu.Unlock()
			}
		})
	}
}

// pollFeed forwards the local receivers' messages as they arrive.
func (d *demo) pollFeed(ctx context.Context) {
	seq := 0
	for ctx.Err() == nil {
		items, rejected, err := readFeed(ctx, d.cfg.receivers, seq)
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		d.mu.Lock()
		d.rejected = rejected
		d.mu.Unlock()
		for _, it := range items {
			seq = max(seq, it.Seq)
			d.events <- it
		}
	}
}

func sev(s pb.Severity) string { return strings.ToLower(strings.TrimPrefix(s.String(), "SEVERITY_")) }
func dir(x pb.Direction) string {
	return strings.ToLower(strings.TrimPrefix(x.String(), "DIRECTION_"))
}

// loop prints events as they happen until every attack's incident is
// resolved and notified, or the deadline.
// Live traffic stops once every incident has ended (stopTraffic), so that
// the collector's last batches reach ClickHouse while the notifications of
// the ends are still on their way.
func (d *demo) loop(ctx context.Context, deadline time.Time, stopTraffic func()) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var allEnded time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e := <-d.events:
			d.handle(ctx, e)
		case now := <-tick.C:
			if now.After(deadline) {
				d.p.say("deadline reached (%s after the live start)", now.Sub(d.gen.Live()).Round(time.Second))
				return nil
			}
			if !d.allResolved() {
				continue
			}
			if allEnded.IsZero() {
				allEnded = now
				stopTraffic()
				d.p.say("every incident has ended: live traffic stops; waiting for the last notifications")
			}
			if d.allNotified(ctx) || now.Sub(allEnded) > d.cfg.settle {
				// Let the last messages arrive and print.
				end := time.After(1500 * time.Millisecond)
				for {
					select {
					case e := <-d.events:
						d.handle(ctx, e)
						continue
					case <-end:
					}
					break
				}
				return nil
			}
		}
	}
}

func (d *demo) allResolved() bool {
	for _, st := range d.attacks {
		if st.ended.IsZero() || st.resolved.IsZero() {
			return false
		}
	}
	return true
}

// allNotified asks the alerter whether every receiver of every expected
// incident has settled its resolve (told, or deliberately not told).
func (d *demo) allNotified(ctx context.Context) bool {
	if d.token == "" {
		return true
	}
	for _, st := range d.attacks {
		if st.incident == "" {
			continue
		}
		in, err := getIncident(ctx, d.cfg.alerter, d.token, st.incident)
		if err != nil || in.Incident.State != "resolved" {
			return false
		}
		for _, n := range in.Notifications {
			if n.ToldSeverity != "" && !n.ToldResolved {
				return false
			}
		}
	}
	return true
}

func (d *demo) handle(ctx context.Context, e any) {
	switch e := e.(type) {
	case attackEdge:
		st := d.attacks[e.i]
		a := st.a
		if e.begin {
			st.began = e.at
			d.p.say("ATTACK BEGINS  %s: %s", a.Name, describeAttack(a))
		} else {
			st.ended = e.at
			d.p.say("ATTACK STOPS   %s after %s", a.Name, a.Duration)
		}
	case *pb.AnomalyEvent:
		d.anomaly(ctx, e)
	case item:
		d.message(e)
	case analystResult:
		if e.err != nil {
			d.p.say("ANALYST query for %s failed: %v", e.st.a.Name, e.err)
			return
		}
		d.p.say("ANALYST (%s over ClickHouse HTTP, read-only) asks who is behind %s — %.0f ms:\n%s\n\n%s",
			d.cfg.chUser, e.st.incident, float64(e.took.Microseconds())/1000, e.sql, e.text)
	}
}

func describeAttack(a *scenario.Attack) string {
	switch a.Kind {
	case scenario.SYNFlood:
		return fmt.Sprintf("TCP SYN flood on %s port %d from %d spoofed sources, %s", a.Target, a.Port, a.Sources, notify.Rate(a.PPS, "pps"))
	case scenario.Amplification:
		return fmt.Sprintf("UDP amplification (reflectors' port %d) on %s from %d reflectors, %s of %d-byte packets (%s)", a.Port,
			a.Target, a.Sources, notify.Rate(a.PPS, "pps"), size(a, 468), notify.Rate(a.PPS*float64(size(a, 468))*8, "bps"))
	case scenario.CarpetBombing:
		return fmt.Sprintf("carpet bombing: UDP spread over every address of %s from %d sources, %s (%s)", a.Target, a.Sources,
			notify.Rate(a.PPS, "pps"), notify.Rate(a.PPS*float64(size(a, 1200))*8, "bps"))
	case scenario.Scan:
		return fmt.Sprintf("customer host %s scans the Internet on TCP port %d, %s probes (one-packet flows)", a.Target, a.Port,
			notify.Rate(a.PPS, "pps"))
	}
	return a.Kind
}

func size(a *scenario.Attack, def int) int {
	if a.PacketSize > 0 {
		return a.PacketSize
	}
	return def
}

// match finds the scripted attack an anomaly belongs to.
func (d *demo) match(ev *pb.AnomalyEvent) *attackState {
	if st, ok := d.byID[ev.GetId()]; ok {
		return st
	}
	for _, st := range d.attacks {
		a := st.a
		if st.incident == "" && !st.began.IsZero() && ev.GetCustomer() == a.Customer && ev.GetSubnet() == a.Subnet().String() &&
			dir(ev.GetDirection()) == a.Expect.Direction && ev.GetClass() == a.Expect.Class {
			return st
		}
	}
	return nil
}

func (d *demo) anomaly(ctx context.Context, ev *pb.AnomalyEvent) {
	now := time.Now()
	st := d.match(ev)
	what := fmt.Sprintf("%s %s %s %s %s", ev.GetClass(), strings.ToUpper(sev(ev.GetSeverity())), ev.GetCustomer(), ev.GetSubnet(), dir(ev.GetDirection()))
	figures := fmt.Sprintf("%s %s vs %s expected (%s, score %.1f)", ev.GetMetric(), notify.Rate(ev.GetObserved(), ev.GetUnit()),
		notify.Rate(ev.GetExpected(), ev.GetUnit()), notify.Ratio(ev.GetObserved(), ev.GetExpected()), ev.GetScore())
	switch ev.GetKind() {
	case pb.AnomalyEvent_START:
		if st == nil {
			if _, seen := d.unexpected[ev.GetId()]; !seen {
				d.unexpected[ev.GetId()] = what + ": " + figures
				d.p.say("UNEXPECTED INCIDENT %s %s — %s (no scripted attack explains it)", ev.GetId(), what, figures)
			}
			return
		}
		if st.incident != "" {
			return // a re-delivered START
		}
		st.incident, st.opened, st.severity = ev.GetId(), now, sev(ev.GetSeverity())
		d.byID[ev.GetId()] = st
		fp := ev.GetFingerprint()
		var extra []string
		if t := topItems(fp.GetTopSources()); t != "" {
			extra = append(extra, "top sources: "+t)
		}
		if m := fp.GetMitigation().GetDescription(); m != "" {
			extra = append(extra, "mitigation: "+m)
		}
		d.p.say("INCIDENT OPENED   %s %s — %s\n%.1f s after the attack began (detector event time: started %s)\n%s", ev.GetId(), what, figures,
			now.Sub(st.began).Seconds(), time.Unix(0, int64(ev.GetStartedAtNs())).UTC().Format("15:04:05"), strings.Join(extra, "\n"))
		go d.analyst(ctx, st, ev)
	case pb.AnomalyEvent_UPDATE:
		if st == nil {
			return
		}
		// Updates repeat the figures every minute; only an escalation is news.
		if s := sev(ev.GetSeverity()); s != st.severity {
			st.severity = s
			d.p.say("INCIDENT ESCALATED %s %s — %s", ev.GetId(), what, figures)
		}
	case pb.AnomalyEvent_END:
		if st == nil {
			if _, seen := d.unexpected[ev.GetId()]; seen {
				d.p.say("unexpected incident %s ended: %s", ev.GetId(), ev.GetReason())
			}
			return
		}
		if !st.resolved.IsZero() {
			return
		}
		st.resolved = now
		started := time.Unix(0, int64(ev.GetStartedAtNs()))
		ended := time.Unix(0, int64(ev.GetEndedAtNs()))
		d.p.say("INCIDENT RESOLVED %s %s — lasted %s (event time), peak %s / %s, total %s; reason: %s", ev.GetId(), what,
			ended.Sub(started).Round(time.Second), notify.Rate(float64(ev.GetPeakBps()), "bps"), notify.Rate(float64(ev.GetPeakPps()), "pps"),
			notify.Rate(float64(ev.GetTotalBytes()), "B"), ev.GetReason())
	}
}

func topItems(items []*pb.TopItem) string {
	var parts []string
	for i, it := range items {
		if i == 3 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%.0f%%)", it.GetKey(), 100*it.GetShare()))
	}
	return strings.Join(parts, ", ")
}

// message prints what a local receiver accepted.
func (d *demo) message(it item) {
	label := map[string]string{"slack": "SLACK (#noc webhook)", "pagerduty": "PAGERDUTY (Events API v2)", "email": "E-MAIL to the customer"}[it.Kind]
	var whose []string
	for _, id := range it.Incidents {
		st, ok := d.byID[id]
		if !ok {
			continue
		}
		whose = append(whose, st.a.Name)
		st.notified[it.Kind] = true
		if st.firstNotification.IsZero() && !it.Resolved {
			st.firstNotification, st.firstVia = it.Time, it.Kind
		}
	}
	for_ := ""
	if len(whose) > 0 {
		for_ = " — " + strings.Join(whose, ", ")
	}
	d.p.say("%s%s\n%s", label, for_, it.Text)
}

// analyst runs the query an analyst would: who is behind the incident,
// from the flows the sink stored, as the read-only analyst user.
func (d *demo) analyst(ctx context.Context, st *attackState, ev *pb.AnomalyEvent) {
	// The sink inserts at most every batch.max_wait: give it a moment.
	select {
	case <-ctx.Done():
		return
	case <-time.After(3 * time.Second):
	}
	a := st.a
	peer, order := "src_addr", "packets"
	if a.Expect.Direction == "outbound" {
		order = "flows"
	}
	since := st.began.Add(-5 * time.Second).Unix()
	sql := fmt.Sprintf(`SELECT replaceRegexpOne(IPv6NumToString(%s), '^::ffff:', '') AS source,
       count() AS flows, sum(packets) AS packets, formatReadableSize(sum(bytes)) AS bytes,
       uniq(dst_addr) AS destinations,
       arraySlice(groupUniqArray(src_port), 1, 3) AS src_ports, arraySlice(groupUniqArray(dst_port), 1, 3) AS dst_ports
FROM flowsentry.flows
WHERE customer = '%s' AND subnet = '%s' AND direction = '%s'
  AND time_flow_end >= toDateTime(%d)
GROUP BY source ORDER BY %s DESC LIMIT 5`, peer, ev.GetCustomer(), ev.GetSubnet(), dir(ev.GetDirection()), since, order)
	t0 := time.Now()
	h, rows, err := d.ch.query(ctx, sql)
	res := analystResult{st: st, sql: sql, err: err, took: time.Since(t0)}
	if err == nil {
		res.text = table(h, rows)
		st.analyst = len(rows) > 0
	}
	select {
	case d.events <- res:
	case <-ctx.Done():
	}
}

// summary prints the figures and returns an error when the demo failed.
func (d *demo) summary(ctx context.Context) error {
	// The sink flushes at batch.max_wait; wait for the rows to land.
	d.mu.Lock()
	var sent uint64
	for _, n := range d.sent {
		sent += n
	}
	history := d.historyN
	d.mu.Unlock()
	total := history + sent
	var exporters []string
	for i := range d.sc.Exporters {
		exporters = append(exporters, fmt.Sprintf("IPv6StringToNum('::ffff:%s')", d.sc.ExporterAddr(i)))
	}
	if a, err := netip.ParseAddr(d.cfg.replayAddr); err == nil {
		exporters = append(exporters, fmt.Sprintf("IPv6StringToNum('::ffff:%s')", a))
	}
	sql := fmt.Sprintf(`SELECT flow_type, count() AS flows, sum(packets) AS packets, formatReadableSize(sum(bytes)) AS bytes
FROM flowsentry.flows
WHERE exporter IN (%s)
  AND time_received >= toDateTime(%d)
GROUP BY flow_type ORDER BY flow_type`, strings.Join(exporters, ", "), d.runStart.Add(-2*time.Second).Unix())
	var rows [][]string
	var header []string
	var stored uint64
	var err error
	for t0 := time.Now(); time.Since(t0) < 30*time.Second; time.Sleep(time.Second) {
		header, rows, err = d.ch.query(ctx, sql)
		if err != nil {
			continue
		}
		stored = 0
		for _, r := range rows {
			var n uint64
			_, _ = fmt.Sscan(r[1], &n)
			stored += n
		}
		if stored >= total {
			break
		}
	}
	cm, _ := scrape(ctx, d.cfg.collector)
	dm, _ := scrape(ctx, d.cfg.detector)

	var b strings.Builder
	b.WriteString("SUMMARY\n")
	fmt.Fprintf(&b, "Flows sent: %d (history replay %d + live %d)\n", total, history, sent)
	if err != nil {
		fmt.Fprintf(&b, "ClickHouse count failed: %v\n", err)
	} else {
		fmt.Fprintf(&b, "Flows ingested (rows in flowsentry.flows from the demo's exporters since it started): %d\n%s\n", stored, table(header, rows))
	}
	if cm != nil {
		fmt.Fprintf(&b, "Collector: %.0f datagrams, %.0f flows decoded, %.0f produced; drops: socket %.0f, decode errors %.0f, unprotected %.0f, queue/kafka %.0f\n",
			cm.Sum("collector_datagrams_total"), cm.Sum("collector_flows_decoded_total"), cm.Sum("collector_flows_produced_total"),
			cm.Sum("collector_socket_drops_total"), cm.Sum("collector_decode_errors_total"),
			cm.Sum("collector_flows_dropped_unprotected_total"), cm.Sum("collector_flows_dropped_total"))
	}
	if dm != nil {
		fmt.Fprintf(&b, "Detector: %.0f flows folded, dropped late %.0f\n", dm.Sum("detector_flows_folded_total"),
			dm.Sum("detector_flows_dropped_total", `reason="late"`))
	}
	var failures []string
	if err == nil && stored != total {
		failures = append(failures, fmt.Sprintf("ClickHouse holds %d of the %d flows sent", stored, total))
	}
	var arows [][]string
	for _, st := range d.attacks {
		a := st.a
		row := []string{a.Name, a.Expect.Class + " " + a.Expect.Direction, a.Subnet().String()}
		if st.incident == "" {
			row = append(row, "MISSING", "-", "-", "-")
			failures = append(failures, fmt.Sprintf("%s: no %s incident on %s", a.Name, a.Expect.Class, a.Subnet()))
		} else {
			open := fmt.Sprintf("%.1f s", st.opened.Sub(st.began).Seconds())
			notif := "-"
			if !st.firstNotification.IsZero() {
				notif = fmt.Sprintf("%.1f s (%s)", st.firstNotification.Sub(st.began).Seconds(), st.firstVia)
			} else if t, via := d.auditFirstNotification(ctx, st.incident); !t.IsZero() {
				notif = fmt.Sprintf("%.1f s (%s)", t.Sub(st.began).Seconds(), via)
			} else {
				failures = append(failures, fmt.Sprintf("%s: incident %s was never notified", a.Name, st.incident))
			}
			res := "-"
			if !st.resolved.IsZero() {
				res = fmt.Sprintf("%.1f s after it stopped", st.resolved.Sub(st.ended).Seconds())
			} else {
				failures = append(failures, fmt.Sprintf("%s: incident %s did not resolve", a.Name, st.incident))
			}
			row = append(row, st.incident+" ("+st.severity+")", open, notif, res)
		}
		arows = append(arows, row)
	}
	fmt.Fprintf(&b, "Incidents (times from the first attack packet):\n%s\n", table([]string{"attack", "expected", "subnet", "incident",
		"opened after", "first notification after", "resolved"}, arows))
	if t := d.auditTable(ctx); t != "" {
		fmt.Fprintf(&b, "Alerter audit trail (flowsentry.notifications, read as %s):\n%s\n", d.cfg.chUser, t)
	}
	if len(d.unexpected) > 0 {
		ids := make([]string, 0, len(d.unexpected))
		for id := range d.unexpected {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			failures = append(failures, fmt.Sprintf("unexpected incident %s: %s", id, d.unexpected[id]))
		}
	}
	d.mu.Lock()
	if d.rejected > 0 {
		failures = append(failures, fmt.Sprintf("the local receivers refused %d malformed messages (see receivers.log)", d.rejected))
	}
	d.mu.Unlock()
	if len(failures) > 0 {
		fmt.Fprintf(&b, "FAILED:\n  %s", strings.Join(failures, "\n  "))
		d.p.say("%s", b.String())
		return errors.New("the demo did not go as scripted")
	}
	fmt.Fprintf(&b, "OK: %d attacks, %d incidents opened, notified and resolved; no unexpected incident.", len(d.attacks), len(d.attacks))
	d.p.say("%s", b.String())
	return nil
}

// auditFirstNotification reads the alerter's audit trail for when an
// incident was first delivered anywhere (whole seconds; used when Slack and
// PagerDuty are real services the demo cannot watch).
func (d *demo) auditFirstNotification(ctx context.Context, id string) (time.Time, string) {
	_, rows, err := d.ch.query(ctx, fmt.Sprintf(`SELECT toUnixTimestamp(min(time)), argMin(receiver, time)
FROM flowsentry.notifications
WHERE incident_id = '%s' AND record = 'notification' AND outcome = 'delivered'`, id))
	if err != nil || len(rows) == 0 || len(rows[0]) < 2 || rows[0][0] == "0" {
		return time.Time{}, ""
	}
	var sec int64
	_, _ = fmt.Sscan(rows[0][0], &sec)
	return time.Unix(sec, 0), rows[0][1]
}

// auditTable summarises the audit trail of the demo's incidents.
func (d *demo) auditTable(ctx context.Context) string {
	var ids []string
	for _, st := range d.attacks {
		if st.incident != "" {
			ids = append(ids, "'"+st.incident+"'")
		}
	}
	if len(ids) == 0 {
		return ""
	}
	h, rows, err := d.ch.query(ctx, fmt.Sprintf(`SELECT incident_id, receiver, countIf(outcome = 'delivered') AS delivered,
       countIf(outcome NOT IN ('delivered', '')) AS not_delivered, groupUniqArray(action) AS actions
FROM flowsentry.notifications
WHERE record = 'notification' AND incident_id IN (%s)
GROUP BY incident_id, receiver ORDER BY incident_id, receiver`, strings.Join(ids, ", ")))
	if err != nil {
		return "audit trail query failed: " + err.Error()
	}
	return table(h, rows)
}

// byExporter sorts one step's records into per (reused between steps), one
// slice of flows for each exporter.
func byExporter(recs []scenario.Record, per [][]flowgen.Flow) {
	for i := range per {
		per[i] = per[i][:0]
	}
	for _, r := range recs {
		per[r.Exporter] = append(per[r.Exporter], r.Flow)
	}
}
