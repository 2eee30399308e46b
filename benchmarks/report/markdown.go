package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// human prints a figure with three significant digits and k/M suffixes.
func human(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + " M"
	case a >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 0, 64) + " k"
	case a >= 100 || v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func value(f Figure) string {
	if f.Value == nil {
		return f.Status
	}
	switch f.Unit {
	case "share", "F1": // scores in 0..1: always two decimals, no unit word
		return strconv.FormatFloat(*f.Value, 'f', 2, 64)
	}
	return human(*f.Value) + " " + f.Unit
}

func metCell(f Figure) string {
	switch {
	case f.Met == nil:
		return "—"
	case *f.Met:
		return "yes"
	case f.Status != StatusMeasured:
		return "**no** (" + f.Status + ")"
	}
	return "**no**"
}

func ratioCell(f Figure) string {
	if f.Ratio == nil {
		return ""
	}
	return strconv.FormatFloat(*f.Ratio, 'f', 2, 64) + "×"
}

func runsCell(vs []float64) string {
	if len(vs) < 2 {
		return ""
	}
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = human(v)
	}
	return strings.Join(s, ", ")
}

func extraCell(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var s []string
	for _, k := range keys {
		s = append(s, k+" "+human(m[k]))
	}
	return strings.Join(s, "; ")
}

// cell keeps a table cell on one row.
func cell(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ") }

// WriteMarkdown writes report.md; plots maps a plot's name to its file
// (absent when there was nothing to plot).
func WriteMarkdown(w io.Writer, r Results, plots map[string]string) error {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	m := r.Machine
	p("# Flowsentry benchmarks\n\n")
	if r.Quick {
		p("> **QUICK run (`QUICK=1`): every figure here is %s.** Run `make bench` for the real figures.\n\n", quickNote)
	}
	p("Written by `make bench` (`benchmarks/run.sh`, then `benchmarks/report`); the same figures are in `latest.json`.\n\n")
	p("| machine | |\n|---|---|\n")
	p("| CPU | %s, %d cores |\n| memory | %.1f GiB |\n| Go | %s |\n| kernel | %s |\n| OS | %s |\n| run started | %s |\n",
		cell(m.CPUModel), m.Cores, float64(m.MemoryBytes)/(1<<30), m.GoVersion, m.Kernel, cell(m.OS), m.Date)
	p("| load average at start | %.2f %.2f %.2f |\n| load average at end | %.2f %.2f %.2f |\n\n",
		m.LoadAverageStart[0], m.LoadAverageStart[1], m.LoadAverageStart[2], m.LoadAverageEnd[0], m.LoadAverageEnd[1], m.LoadAverageEnd[2])
	p("The machine is shared with other engineers: a load average above the core count means other work ran beside the benchmarks. ")
	p("Throughput figures are therefore per CPU-second of the measured process where the benchmark allows it (collector, detector), which other load distorts far less than wall-clock rates.\n\n")

	p("## Against the targets\n\n| figure | measured | target | met | peer | ratio |\n|---|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		if f.Target == "" && f.Group != "e2e" {
			continue
		}
		peer := ""
		if f.PeerValue != nil {
			peer = human(*f.PeerValue) + " (" + f.PeerName + ")"
		}
		p("| %s | %s | %s | %s | %s | %s |\n", cell(f.Name), value(f), cell(f.Target), metCell(f), cell(peer), ratioCell(f))
	}
	p("\n")

	p("## Collector vs goflow2, same run\n\n")
	p("Both collectors receive the same generated datagrams over UDP on this machine, one after the other (`benchmarks/collector`): NetFlow v9 and IPFIX with 24 records per datagram, sFlow with 8 samples. ")
	p("flows/s per core = flows handled / CPU seconds of the receiving process. Flowsentry: decode, normalise, batch and encode, Kafka writes discarded; goflow2: decode and `-format=bin` to /dev/null.\n\n")
	p("| protocol | Flowsentry | goflow2 | ratio | target | met | note |\n|---|---|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		if !strings.HasPrefix(f.ID, "collector.vs_goflow2.") {
			continue
		}
		peer := ""
		if f.PeerValue != nil {
			peer = human(*f.PeerValue)
		}
		p("| %s | %s | %s | %s | %s | %s | %s |\n", strings.TrimSuffix(f.Name, " collector throughput vs goflow2"), value(f), peer, ratioCell(f), cell(f.Target), metCell(f), cell(f.Note))
	}
	for _, f := range r.Figures {
		if strings.HasPrefix(f.ID, "collector.kafka.") {
			p("\nWith real produce to the local broker (`-kafka`): %s: %s (%s).", f.Name, value(f), f.Note)
		}
	}
	p("\n\n")
	if img, ok := plots["collector"]; ok {
		p("![collector vs goflow2](%s)\n\n", img)
	}

	p("## Detector engine\n\n| figure | measured | runs | target | met | also |\n|---|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		if f.Group == "detector" {
			p("| %s | %s | %s | %s | %s | %s |\n", cell(f.Name), value(f), runsCell(f.Runs), cell(f.Target), metCell(f), cell(extraCell(f.Extra)))
		}
	}
	p("\n")
	if img, ok := plots["detector"]; ok {
		p("![detector fold rate](%s)\n\n", img)
	}

	p("## Sink into the local ClickHouse\n\n")
	p("`benchmarks/sink/run.sh` runs the sink engineer's benchmarks in `alerter/sink`: the store alone (rows already converted), and the whole sink from an 8-partition topic of 20-flow FlowBatches to committed offsets. ")
	p("sink-cores and clickhouse-cores are CPU seconds per wall second of the benchmark process and of the ClickHouse server.\n\n")
	p("| benchmark | rows/s | target | met | also | note |\n|---|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		if f.Group == "sink" {
			p("| %s | %s | %s | %s | %s | %s |\n", cell(f.Name), value(f), cell(f.Target), metCell(f), cell(extraCell(f.Extra)), cell(f.Note))
		}
	}
	p("\n")
	if img, ok := plots["sink"]; ok {
		p("![sink rows/s](%s)\n\n", img)
	}

	writeQuality(&b, r, plots)

	p("## Collector Go benchmarks\n\nPer flow (each benchmark counts one flow per iteration); median of the runs.\n\n")
	p("| benchmark | ns/flow | flows/s per core | allocs/flow | B/flow | peer | ratio |\n|---|---|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		if f.Group != "collector-go" {
			continue
		}
		if f.Value == nil {
			p("| %s | %s | | | | | %s |\n", cell(f.Name), f.Status, cell(f.Note))
			continue
		}
		peer := ""
		if f.PeerValue != nil {
			peer = human(*f.PeerValue) + " ns: " + f.PeerName
		}
		p("| %s | %s | %s | %s | %s | %s | %s |\n", cell(f.Name), human(*f.Value), human(f.Extra["flows/s per core"]),
			human(f.Extra["allocs/flow"]), human(f.Extra["B/flow"]), cell(peer), ratioCell(f))
	}
	p("\n")
	if img, ok := plots["collector-go"]; ok {
		p("![collector Go benchmarks](%s)\n\n", img)
	}

	p("## End-to-end latency\n\n")
	for _, f := range r.Figures {
		if f.Group == "e2e" {
			p("%s: **%s**", f.Name, value(f))
			if f.Note != "" {
				p(": %s", f.Note)
			}
			if !strings.HasSuffix(f.Note, ".") {
				p(".")
			}
			p("\n\n")
		}
	}

	p("## Where we fall short, and why\n\n")
	short := 0
	for _, f := range r.Figures {
		if f.Met == nil || *f.Met {
			continue
		}
		short++
		why := "No explanation written yet." + loadNote(r, f)
		if explain, ok := explanations[f.ID]; ok {
			why = explain(r, f)
		}
		if f.Status != StatusMeasured {
			why = "Not measured in this run (" + f.Status + ": " + f.Note + ")."
		}
		got := value(f)
		if f.Ratio != nil {
			got += " (" + ratioCell(f) + " " + strings.SplitN(f.PeerName, " ", 2)[0] + ")"
		}
		p("* **%s**: %s against %s. %s\n", f.Name, got, f.Target, why)
	}
	if short == 0 {
		p("Every figure with a target met it in this run.\n")
	}
	p("\n")

	p("## How each figure was produced\n\nFrom the repository root; logs of the last run are in `benchmarks/results/logs/`.\n\n")
	p("| step | command | exit | seconds | load (1 min) at start |\n|---|---|---|---|---|\n")
	for _, s := range r.Steps {
		p("| %s | `%s` | %d | %.0f | %.2f |\n", s.Name, cell(s.Command), s.ExitCode, s.Seconds, s.Load1)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
