package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/packetworks/flowsentry/benchmarks/scenario"
	"github.com/packetworks/flowsentry/schemas/telemetry"
	"github.com/packetworks/flowsentry/schemas/topicadmin"
	"github.com/segmentio/kafka-go"
)

// observed is everything one run saw.
type observed struct {
	Started, Finished time.Time
	Attacks           []attackRun
	Events            []anomalyEvent
	BadEvents         int
	Mentions          []mention
	Requests          map[string]int
	Refused           []string
	HistoryRecords    uint64
	LateFlows         float64 // detector_flows_dropped_total{reason="late"} at the end
	WorkDir           string
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// run starts the services on fresh topics, warms the detector, sends the
// attacks and collects what was published and notified. Errors are about
// the harness (a service that does not start, Kafka down); stages that did
// not happen are in observed for the caller to judge.
func run(ctx context.Context, o options) (*observed, error) {
	obs := &observed{Started: time.Now()}
	say := func(format string, a ...any) {
		fmt.Fprintf(o.Log, "[%5.1fs] %s\n", time.Since(obs.Started).Seconds(), fmt.Sprintf(format, a...))
	}
	dir := o.WorkDir
	if dir == "" {
		d, err := os.MkdirTemp("", "flowsentry-latency-")
		if err != nil {
			return nil, err
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	obs.WorkDir = dir
	failed := true
	defer func() {
		if failed || o.Keep {
			say("work directory kept: %s", dir)
		} else if o.WorkDir == "" {
			_ = os.RemoveAll(dir)
		}
	}()

	bin := o.Bin
	if bin == "" {
		bin = filepath.Join(dir, "bin")
		t := time.Now()
		if err := build(ctx, o.Repo, bin); err != nil {
			return nil, err
		}
		say("built collector, detector, alerter in %.1f s", time.Since(t).Seconds())
	}

	l := layout{dir: dir, runID: randomHex(4), brokers: o.Brokers}
	l.prefix = "latency-" + l.runID + "-"
	client := &kafka.Client{Addr: kafka.TCP(o.Brokers...), Timeout: 20 * time.Second}
	cfgs := topicadmin.Configs(l.prefix, 1)
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := topicadmin.Create(tctx, client, cfgs, nil)
	cancel()
	if err != nil {
		return nil, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := topicadmin.Delete(dctx, client, topicadmin.Names(cfgs)); err != nil {
			say("deleting topics %s*: %v", l.prefix, err)
		}
	}()

	secret := randomHex(16)
	rcv, err := startReceiver([]byte(secret))
	if err != nil {
		return nil, err
	}
	defer rcv.close()
	l.receiverURL = rcv.url

	ports := map[string]*string{"tcp:c": &l.collectorHTTP, "tcp:d": &l.detectorHTTP, "tcp:a": &l.alerterHTTP,
		"udp:n": &l.netflow, "udp:s": &l.sflow, "udp:i": &l.ipfix}
	for k, dst := range ports {
		p, err := freePort(k[:3])
		if err != nil {
			return nil, err
		}
		*dst = fmt.Sprintf("127.0.0.1:%d", p)
	}
	files := map[string]string{"inventory.yaml": inventoryYAML(o.Attacks), "collector.yaml": l.collectorYAML(),
		"detector.yaml": l.detectorYAML(o), "alerter.yaml": l.alerterYAML(o)}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			return nil, err
		}
	}
	env := []string{"LATENCY_SLACK_WEBHOOK=" + rcv.url + "/slack/T0LAT/B0LAT/" + randomHex(8),
		"LATENCY_PAGERDUTY_KEY=latency-" + l.runID, "LATENCY_WEBHOOK_SECRET=" + secret,
		"LATENCY_ALERTER_TOKENS=latency:read-only:" + randomHex(16)}
	var procs []*process
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			procs[i].stop(10 * time.Second)
		}
	}()
	for _, s := range []struct{ name, addr string }{{"collector", l.collectorHTTP}, {"detector", l.detectorHTTP}, {"alerter", l.alerterHTTP}} {
		p, err := startProcess(s.name, filepath.Join(bin, s.name), filepath.Join(dir, s.name+".yaml"), dir, "http://"+s.addr, env)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	rctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	for _, p := range procs {
		if err = p.waitReady(rctx); err != nil {
			break
		}
	}
	if err == nil {
		err = waitGroupStable(rctx, client, "latency-"+l.runID+"-alerter")
	}
	cancel()
	if err != nil {
		return nil, err
	}
	say("collector, detector and alerter ready on topics %s* (logs in %s)", l.prefix, dir)

	var events eventLog
	evctx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	events.read(evctx, o.Brokers, l.prefix+"anomalies", topicPartitions("anomalies"), obs.Started, o.Log)

	d, err := newDriver(o, l)
	if err != nil {
		return nil, err
	}
	defer d.close()
	cursor, n, err := d.history(ctx, o.history(), o.HistoryRate)
	if err != nil {
		return nil, err
	}
	obs.HistoryRecords = n
	say("history: %d records covering %s of event time replayed (detector warm-up %d windows)", n, o.history(), o.WarmupWindows)
	liveCtx, stopLive := context.WithCancel(ctx)
	liveErr := make(chan error, 1)
	go func() { liveErr <- d.live(liveCtx, cursor, 100*time.Millisecond) }()
	defer func() {
		stopLive()
		<-liveErr
	}()
	if err := caughtUp(ctx, procs[0].base, procs[1].base, n); err != nil {
		return nil, err
	}
	say("pipeline caught up with the history; live traffic on %d subnets", o.Attacks)

	d.schedule(time.Now().Add(o.Lead), o.Spacing)
	err = watch(ctx, o, d, &events, rcv, say, liveErr)
	obs.Attacks, _, _ = d.state()
	obs.Events, obs.BadEvents = events.snapshot()
	obs.Mentions, obs.Requests, obs.Refused = rcv.snapshot()
	if m, merr := telemetry.Scrape(ctx, procs[1].base); merr == nil {
		obs.LateFlows = m.Sum("detector_flows_dropped_total", `reason="late"`)
	}
	obs.Finished = time.Now()
	if err != nil {
		return obs, err
	}
	failed = false
	return obs, nil
}

func newDriver(o options, l layout) (*driver, error) {
	sc, err := scenario.Parse([]byte(scenarioYAML(o.Attacks)))
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	d := &driver{gen: scenario.NewGenerator(sc), sampling: sampling, rng: mrand.New(mrand.NewPCG(8, 0x1a7e)), attacks: attacks(o.Attacks)}
	to := map[string]string{scenario.NetFlow9: l.netflow, scenario.SFlow: l.sflow, scenario.IPFIX: l.ipfix}
	for i, ex := range sc.Exporters {
		e, err := openExporter(ex.Protocol, sc.ExporterAddr(i), to[ex.Protocol], uint32(1+i), ex.Sampling)
		if err != nil {
			d.close()
			return nil, err
		}
		d.exps = append(d.exps, e)
	}
	if d.hist, err = openExporter(scenario.IPFIX, netip.MustParseAddr(fmt.Sprintf(exporterAddr, 9)), l.ipfix, historyDomain, sampling); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

// caughtUp waits until the collector produced the history and the detector
// read it, so that the attacks meet warm baselines and no backlog.
func caughtUp(ctx context.Context, collector, detector string, history uint64) error {
	deadline := time.Now().Add(60 * time.Second)
	var produced, read float64
	for time.Now().Before(deadline) {
		cm, err1 := telemetry.Scrape(ctx, collector)
		dm, err2 := telemetry.Scrape(ctx, detector)
		if err1 == nil && err2 == nil {
			produced = cm.Sum("collector_flows_produced_total")
			read = dm.Sum("detector_flows_folded_total") + dm.Sum("detector_flows_dropped_total")
			if produced >= float64(history) && read >= float64(history) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("pipeline not caught up after 60 s: %.0f of %d history records produced, %.0f read by the detector",
		produced, history, read)
}

// watch runs the attacks: each stops Hold after its START was read (or
// after MaxAttack), and the run ends when every attack's resolved
// notification arrived or the last stop is long enough ago for END to
// have come (end_windows windows below, finally evaluated after the
// lateness, plus margin).
func watch(ctx context.Context, o options, d *driver, events *eventLog, rcv *receiver, say func(string, ...any), liveErr <-chan error) error {
	told := map[string]bool{}
	endBound := time.Duration(o.EndWindows+2)*windowSeconds*time.Second + latenessSeconds*time.Second + 10*time.Second
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-liveErr:
			if err == nil {
				err = errors.New("live traffic stopped")
			}
			return err
		case <-tick.C:
		}
		now := time.Now()
		runs, done, at := d.state()
		evs, _ := events.snapshot()
		ms, _, _ := rcv.snapshot()
		outs := match(runs, evs, ms)
		allOver, allResolved := true, true
		var lastStop time.Time
		for i, oc := range outs {
			a := oc.Attack
			note := func(key, format string, args ...any) {
				if !told[key] {
					told[key] = true
					say(format, args...)
				}
			}
			if !a.Sent.IsZero() {
				note(a.Name+"/sent", "%s: first datagram sent (%s at %s, window phase %.1f s)", a.Name, a.Kind, a.Subnet,
					phase(a.Sent))
			}
			switch {
			case !oc.Start.IsZero():
				note(a.Name+"/start", "%s: START %s %s %s, %.2f s after the first datagram", a.Name, oc.Incident, oc.Class,
					oc.Severity, oc.Start.Sub(a.Sent).Seconds())
				stopAt := oc.StartArrived.Add(o.Hold)
				if t := a.Sent.Add(o.MinAttack); t.After(stopAt) {
					stopAt = t
				}
				d.stop(i, stopAt)
			case !at[i].IsZero() && now.Sub(at[i]) > o.MaxAttack:
				d.stop(i, now)
			}
			if !oc.Notified.IsZero() {
				note(a.Name+"/notified", "%s: first notification (%s) %.2f s after START", a.Name, oc.NotifiedVia,
					oc.Notified.Sub(oc.Start).Seconds())
			}
			if done[i] {
				note(a.Name+"/stopped", "%s: attack stopped", a.Name)
				if a.Stopped.After(lastStop) {
					lastStop = a.Stopped
				}
			} else {
				allOver = false
			}
			if !oc.End.IsZero() {
				note(a.Name+"/end", "%s: END %.2f s after the attack stopped", a.Name, oc.End.Sub(a.Stopped).Seconds())
			}
			if oc.Resolved.IsZero() {
				allResolved = false
			} else {
				note(a.Name+"/resolved", "%s: resolved notification (%s) %.2f s after the attack stopped", a.Name,
					oc.ResolvedVia, oc.Resolved.Sub(a.Stopped).Seconds())
			}
		}
		if allOver && allResolved {
			return nil
		}
		if allOver && now.Sub(lastStop) > endBound {
			say("giving up waiting: %s after the last attack stopped", endBound)
			return nil
		}
	}
}

// phase is where t falls in the detector's epoch-aligned window.
func phase(t time.Time) float64 {
	w := int64(windowSeconds * time.Second)
	return float64(t.UnixNano()%w) / 1e9
}
