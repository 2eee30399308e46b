package main

import (
	"fmt"
	"strings"
)

// explanations say why a figure falls short of its target, from what was
// measured (this run's other figures) and what the engineers wrote
// (docs/collector.md, docs/detection.md). Printed only for a miss.
var explanations = map[string]func(r Results, f Figure) string{
	"collector.vs_goflow2.sflow": func(r Results, f Figure) string {
		s := "For sFlow both collectors run goflow2's sFlow decoder (we only bound its sample and record counts first, docs/collector.md, Malformed input); " +
			"it allocates per sample and record (`go test -bench Decode/sflow -memprofile`: every allocation is in goflow2's decoders/sflow)"
		if d, ok := figure(r, "collector.go.decode.Decode/sflow"); ok && d.Value != nil {
			s += fmt.Sprintf(": BenchmarkDecode/sflow costs %s ns, %s allocs and %s B per flow", human(*d.Value), human(d.Extra["allocs/flow"]), human(d.Extra["B/flow"]))
		}
		if d, ok := figure(r, "collector.go.decode.Decode/netflow9"); ok && d.Value != nil {
			s += fmt.Sprintf(", against %s ns and %s allocs for NetFlow v9, whose data sets we decode ourselves with compiled templates", human(*d.Value), human(d.Extra["allocs/flow"]))
		}
		return s + ". Our lead over goflow2 therefore comes only from the work after decoding (normalise, batching, encoding), and an sFlow datagram carries 8 flows against 24, so per-datagram costs weigh three times as much per flow. Reaching 6× needs our own sFlow sample parser writing into a reused pb.Flow, as for v9/IPFIX."
	},
	"collector.vs_goflow2.v9":    collectorMiss,
	"collector.vs_goflow2.ipfix": collectorMiss,
	"detector.fold": func(r Results, f Figure) string {
		return "docs/detection.md (Measured) has 2.4–3.4 M flows per CPU-second for the same benchmark on this kind of box and notes that noise dominates; " +
			"a miss here with a busy machine (see the load column) is more likely other work than the engine." + loadNote(r, f)
	},
	"sink.e2e." + sinkDefaultBatch: sinkMiss,
	"sink.e2e.batch=250000":        sinkMiss,
}

func collectorMiss(r Results, f Figure) string {
	return "docs/collector.md: NetFlow v9/IPFIX data sets are decoded by our compiled templates with no allocation per record; a miss here has no known cause in the code." + loadNote(r, f)
}

func sinkMiss(r Results, f Figure) string {
	var parts []string
	best, bestName := 0.0, ""
	for _, g := range r.Figures {
		if strings.HasPrefix(g.ID, "sink.insert.") && g.Value != nil && *g.Value > best {
			best, bestName = *g.Value, strings.TrimPrefix(g.ID, "sink.insert.")
		}
	}
	if best > 0 {
		parts = append(parts, fmt.Sprintf("the ClickHouse 18.16 store alone (no Kafka, rows already converted) reached at best %s rows/s (%s)", human(best), bestName))
	}
	if c, ok := f.Extra["clickhouse-cores"]; ok {
		parts = append(parts, fmt.Sprintf("end to end the sink process used %s cores and the ClickHouse server %s cores of this %d-core machine, which also runs the Kafka broker",
			human(f.Extra["sink-cores"]), human(c), r.Machine.Cores))
	}
	s := "No explanation from the sink engineer yet (docs/clickhouse.md)"
	if len(parts) > 0 {
		s = "Measured in the same run: " + strings.Join(parts, "; ") + ". " + s
	}
	return s + "." + loadNote(r, f)
}

// loadNote says when other work ran beside the step.
func loadNote(r Results, f Figure) string {
	if r.Machine.Cores > 0 && f.Load1 > float64(r.Machine.Cores) {
		return fmt.Sprintf(" The load average was %.2f on %d cores when the step started.", f.Load1, r.Machine.Cores)
	}
	return ""
}

func figure(r Results, id string) (Figure, bool) {
	for _, f := range r.Figures {
		if f.ID == id {
			return f, true
		}
	}
	return Figure{}, false
}
