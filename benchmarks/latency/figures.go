package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// figure has the JSON shape of benchmarks/report's Figure (latest.json),
// without what the report fills from the step (command, load, met).
type figure struct {
	ID     string             `json:"id"`
	Group  string             `json:"group"`
	Name   string             `json:"name"`
	Value  *float64           `json:"value"`
	Unit   string             `json:"unit"`
	Target string             `json:"target"`
	Check  *targetCheck       `json:"target_check,omitempty"`
	Status string             `json:"status"`
	Quick  bool               `json:"quick"`
	Runs   []float64          `json:"runs,omitempty"`
	Extra  map[string]float64 `json:"extra,omitempty"`
	Note   string             `json:"note,omitempty"`
}

type targetCheck struct {
	On    string  `json:"on"`
	Op    string  `json:"op"`
	Bound float64 `json:"bound"`
}

// resultFile is what -json writes: the figures for benchmarks/report and
// the raw per-attack times behind them.
type resultFile struct {
	Quick      bool           `json:"quick"`
	Settings   map[string]any `json:"settings"`
	Figures    []figure       `json:"figures"`
	Attacks    []attackRow    `json:"attacks"`
	Unexpected []string       `json:"unexpected_incidents,omitempty"`
	Refused    []string       `json:"refused_notifications,omitempty"`
}

// attackRow is one attack's times as offsets from its first datagram.
type attackRow struct {
	outcome
	PhaseSeconds float64            `json:"window_phase_seconds"` // of the first datagram in the 10 s window
	Seconds      map[string]float64 `json:"seconds"`              // stage id -> seconds
}

func ptr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// The target for time to detect, and why the worst case can miss
// it by the pipeline's own time.
const detectTarget = 10.0

func floorNote(o options) string {
	return fmt.Sprintf("The detector evaluates %d s event-time windows (epoch-aligned) and publishes START when its partition's "+
		"watermark passes the end of the first window the attack makes hot (provisional evaluation; docs/detection.md). So "+
		"datagram→START is the rest of the window the attack starts in, if that part of it is enough to make the window hot, "+
		"else one more window; plus the pipeline (collector linger 200 ms, Kafka, detector fetch wait ≤ 250 ms). Worst cases: "+
		"an attack starting just after a window boundary (about %d s), or too late in a window to make it hot (%d s plus the "+
		"part it filled). The issue's ≤ %.0f s time to detect holds for most phases but cannot be guaranteed for every phase "+
		"with %d s windows. Attacks here start %s apart, at spread phases (window_phase_seconds per attack in the JSON). "+
		"Value: the worst attack; p50/p95 in extra.", windowSeconds, windowSeconds, windowSeconds, detectTarget, windowSeconds, o.Spacing)
}

// figures computes one figure per stage from the outcomes.
func figures(o options, outs []outcome) []figure {
	route := fmt.Sprintf("route group_wait %s, group_interval %s, alerter tick 1 s (its default)", o.GroupWait, o.GroupInterval)
	notes := map[string]string{
		"e2e.latency.datagram_to_start": floorNote(o),
		"e2e.latency.start_to_notification": "Alerter consume (kafka-go consumer group) + flush of the new group at the alerter's next tick (≤ 1 s) + HTTP; " + route +
			". In production add the route's group_wait (alerter.example.yaml: PagerDuty 10 s, Slack 30 s, customers 1 m).",
		"e2e.latency": "First attack datagram written to the collector's socket → first Slack/PagerDuty/webhook request received " +
			"by the local receiver; " + route + ". Exporters add their own active timeout before the first datagram in real networks; " +
			"production routes add their group_wait.",
		"e2e.latency.stop_to_end": fmt.Sprintf("END needs end_windows = %d window(s) below after the attack, each evaluated finally "+
			"lateness (%d s) after it ends: by design ≥ %d s.", o.EndWindows, latenessSeconds, o.EndWindows*windowSeconds+latenessSeconds),
		"e2e.latency.stop_to_resolved": fmt.Sprintf("stop→END (end_windows = %d) + the group's next group_interval flush (%s here; "+
			"alerter.example.yaml: 5 m) + HTTP.", o.EndWindows, o.GroupInterval),
	}
	if o.EndWindows != 3 {
		for _, id := range []string{"e2e.latency.stop_to_end", "e2e.latency.stop_to_resolved"} {
			notes[id] += fmt.Sprintf(" end_windows %d is not the production 3: not the production figure.", o.EndWindows)
		}
	}
	var out []figure
	for _, s := range stages {
		f := figure{ID: s.ID, Group: "e2e", Name: s.Name, Unit: "s", Status: "measured", Quick: o.Quick, Note: notes[s.ID]}
		secs, missing := s.durations(outs)
		f.Runs = secs
		sum, ok := summarize(secs)
		if s.ID == "e2e.latency.datagram_to_start" {
			f.Target = fmt.Sprintf("≤ %.0f s (issue 8: time to detect)", detectTarget)
			f.Check = &targetCheck{On: "value", Op: "<=", Bound: detectTarget}
		}
		if !ok {
			f.Status = "failed"
			f.Note = strings.TrimSpace(fmt.Sprintf("no attack reached this stage (%d attacks). %s", len(outs), f.Note))
			out = append(out, f)
			continue
		}
		f.Value = ptr(sum.P50)
		if f.Check != nil { // the target bounds the worst case
			f.Value = ptr(sum.Max)
		}
		f.Extra = map[string]float64{"p50": sum.P50, "p95": sum.P95, "max": sum.Max, "min": sum.Min,
			"attacks": float64(sum.N), "missing": float64(missing)}
		if missing > 0 {
			f.Note = fmt.Sprintf("%d of %d attacks never reached this stage. %s", missing, len(outs), f.Note)
		}
		out = append(out, f)
	}
	return out
}

func rows(outs []outcome) []attackRow {
	var out []attackRow
	for _, oc := range outs {
		r := attackRow{outcome: oc, Seconds: map[string]float64{}}
		if !oc.Attack.Sent.IsZero() {
			r.PhaseSeconds = phase(oc.Attack.Sent)
		}
		for _, s := range stages {
			if secs, _ := s.durations([]outcome{oc}); len(secs) == 1 {
				r.Seconds[s.ID] = secs[0]
			}
		}
		out = append(out, r)
	}
	return out
}

// printTable writes the per-attack times and the per-stage summary.
func printTable(w io.Writer, outs []outcome, figs []figure) {
	fmt.Fprintf(w, "\n%-12s %-16s %-9s %-9s %6s %9s %9s %9s %9s %9s\n", "attack", "subnet", "exporter", "class", "phase",
		"→START", "→notif", "dgram→n", "stop→END", "stop→res")
	sec := func(a, b time.Time) string {
		if a.IsZero() || b.IsZero() {
			return "-"
		}
		return fmt.Sprintf("%.2f", b.Sub(a).Seconds())
	}
	for _, oc := range outs {
		a := oc.Attack
		fmt.Fprintf(w, "%-12s %-16s %-9s %-9s %6.1f %9s %9s %9s %9s %9s\n", a.Name, a.Subnet, a.Exporter, oc.Class, phase(a.Sent),
			sec(a.Sent, oc.Start), sec(oc.Start, oc.Notified), sec(a.Sent, oc.Notified), sec(a.Stopped, oc.End), sec(a.Stopped, oc.Resolved))
	}
	fmt.Fprintf(w, "\n%-66s %4s %7s %7s %7s\n", "stage (seconds)", "n", "p50", "p95", "max")
	for _, f := range figs {
		if f.Value == nil {
			fmt.Fprintf(w, "%-66s %4s %7s %7s %7s  (%s)\n", f.Name, "0", "-", "-", "-", f.Status)
			continue
		}
		fmt.Fprintf(w, "%-66s %4.0f %7.2f %7.2f %7.2f\n", f.Name, f.Extra["attacks"], f.Extra["p50"], f.Extra["p95"], f.Extra["max"])
	}
}
