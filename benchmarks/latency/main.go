// Command latency measures Flowsentry's end-to-end latency, datagram →
// notification (issue 8), on the real binaries: it starts collector,
// detector and alerter on fresh Kafka topics, warms the detector with
// time-compressed history, sends live background traffic over UDP (NetFlow
// v9, sFlow, IPFIX) and then attacks one after another on different
// subnets (SYN and UDP floods). Per attack it records
//
//	t0  the first attack datagram written to the collector's socket
//	t1  the START event on the anomalies topic (Kafka timestamp, else arrival)
//	t2  the first Slack / PagerDuty / webhook request for the incident
//	    received by a local receiver in this program
//
// and, after the attack stops, END and the first resolved notification.
// It prints p50/p95/max per stage and writes them with -json in
// benchmarks/report's figure format.
//
// Usage (from benchmarks/): go run ./latency [-quick] [-bin ../bin] [-json file]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	quick := flag.Bool("quick", false, "2 attacks, short warm-up, end_windows 1: under a minute (figures not for comparison)")
	n := flag.Int("attacks", 0, "attacks (default 6, quick 2)")
	bin := flag.String("bin", "", "directory with the collector, detector and alerter binaries (default: go build them)")
	repo := flag.String("repo", "", "repository root for the build (default: the directory holding go.work above here)")
	brokers := flag.String("brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	jsonOut := flag.String("json", "", "write the figures and per-attack times to this file (read by benchmarks/report)")
	work := flag.String("workdir", "", "configs and service logs here (default: a temporary directory, removed on success)")
	keep := flag.Bool("keep", false, "keep the work directory")
	groupWait := flag.Duration("group-wait", 0, "alerter route group_wait (production example: 10s PagerDuty, 30s Slack)")
	groupInterval := flag.Duration("group-interval", time.Second, "alerter route group_interval (delays resolved notifications)")
	flag.Parse()

	o := defaultOptions(*quick)
	if *n > 0 {
		o.Attacks = *n
	}
	o.Bin, o.Repo, o.WorkDir, o.Keep, o.Log = *bin, *repo, *work, *keep, os.Stdout
	o.Brokers = strings.Split(*brokers, ",")
	o.GroupWait, o.GroupInterval = *groupWait, *groupInterval
	if err := o.validate(); err != nil {
		fail(err)
	}
	if o.Bin == "" && o.Repo == "" {
		wd, _ := os.Getwd()
		r, err := findRepo(wd)
		if err != nil {
			fail(err)
		}
		o.Repo = r
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, problems, err := measure(ctx, o)
	if *jsonOut != "" && res != nil {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false) // keep "<=" readable in target_check
		enc.SetIndent("", "  ")
		jerr := enc.Encode(res)
		if jerr == nil {
			jerr = os.WriteFile(*jsonOut, b.Bytes(), 0o644)
		}
		if jerr != nil {
			fail(jerr)
		}
	}
	if err != nil {
		fail(err)
	}
	if len(problems) > 0 {
		fail(fmt.Errorf("incomplete measurement:\n  %s", strings.Join(problems, "\n  ")))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "latency:", err)
	os.Exit(1)
}

// measure runs once and turns what it saw into figures. problems lists the
// stages that did not happen or are out of order; the result is written
// even then (and even after a harness error, when something was measured).
func measure(ctx context.Context, o options) (*resultFile, []string, error) {
	obs, err := run(ctx, o)
	if obs == nil {
		return nil, nil, err
	}
	outs := match(obs.Attacks, obs.Events, obs.Mentions)
	figs := figures(o, outs)
	res := &resultFile{Quick: o.Quick, Figures: figs, Attacks: rows(outs), Refused: obs.Refused,
		Settings: map[string]any{"attacks": o.Attacks, "spacing_seconds": o.Spacing.Seconds(), "window_seconds": windowSeconds,
			"lateness_seconds": latenessSeconds, "warmup_windows": o.WarmupWindows, "end_windows": o.EndWindows,
			"group_wait_seconds": o.GroupWait.Seconds(), "group_interval_seconds": o.GroupInterval.Seconds(),
			"history_records": obs.HistoryRecords, "late_flows_dropped": obs.LateFlows, "notification_requests": obs.Requests,
			"run_seconds": obs.Finished.Sub(obs.Started).Seconds(), "start_time_source": startSource(outs)}}
	var problems []string
	for _, oc := range outs {
		problems = append(problems, checkOrder(oc)...)
	}
	for _, e := range unexpected(outs, obs.Events) {
		res.Unexpected = append(res.Unexpected, fmt.Sprintf("%s %s %s %s %s", e.ID, e.Class, e.Severity, e.Customer, e.Subnet))
	}
	if len(obs.Refused) > 0 {
		problems = append(problems, fmt.Sprintf("the receiver refused %d notifications: %s", len(obs.Refused), obs.Refused[0]))
	}
	printTable(o.Log, outs, figs)
	fmt.Fprintf(o.Log, "\nrun took %.1f s; START time from %s; notification requests %v; unexpected incidents %d; late flows %.0f\n",
		obs.Finished.Sub(obs.Started).Seconds(), startSource(outs), obs.Requests, len(res.Unexpected), obs.LateFlows)
	return res, problems, err
}

// startSource says where t1 came from.
func startSource(outs []outcome) string {
	kafkaTS, arrival := 0, 0
	for _, oc := range outs {
		if oc.Start.IsZero() {
			continue
		}
		if oc.KafkaTimeUsed {
			kafkaTS++
		} else {
			arrival++
		}
	}
	switch {
	case arrival == 0 && kafkaTS > 0:
		return "Kafka record timestamps"
	case kafkaTS == 0 && arrival > 0:
		return "arrival at this program's reader (the records carry no usable timestamp)"
	case kafkaTS > 0:
		return fmt.Sprintf("Kafka record timestamps (%d) and arrival (%d)", kafkaTS, arrival)
	}
	return "none"
}
