package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Results is latest.json.
type Results struct {
	Quick     bool     `json:"quick"`
	QuickNote string   `json:"quick_note,omitempty"`
	Machine   Machine  `json:"machine"`
	Steps     []Step   `json:"steps"`
	Figures   []Figure `json:"figures"`
}

// Step is one command run.sh ran, as it recorded it in steps.tsv.
type Step struct {
	Name     string  `json:"name"`
	Command  string  `json:"command"`
	ExitCode int     `json:"exit_code"` // 124: killed by run.sh's time limit
	Seconds  float64 `json:"seconds"`
	Load1    float64 `json:"load1_at_start"`
}

// Figure is one measured (or honestly unmeasured) number.
type Figure struct {
	ID        string   `json:"id"`
	Group     string   `json:"group"`
	Name      string   `json:"name"`
	Value     *float64 `json:"value"` // null when not measured
	Unit      string   `json:"unit"`
	PeerValue *float64 `json:"peer_value,omitempty"`
	PeerName  string   `json:"peer_name,omitempty"`
	// Ratio is how many times better than the peer we are (value/peer for
	// rates, peer/value for costs such as ns/flow): > 1 means ahead.
	Ratio  *float64     `json:"ratio,omitempty"`
	Target string       `json:"target"` // "" when the spec sets none
	Check  *TargetCheck `json:"target_check,omitempty"`
	// Met is null without a target, false when a target exists but the
	// figure was not measured.
	Met     *bool              `json:"met"`
	Status  string             `json:"status"`
	Quick   bool               `json:"quick"`
	Command string             `json:"command"`
	Load1   float64            `json:"load1_at_start"` // of the step that measured it
	Runs    []float64          `json:"runs,omitempty"` // each run's value when repeated
	Extra   map[string]float64 `json:"extra,omitempty"`
	Note    string             `json:"note,omitempty"`
}

// TargetCheck is the machine-readable form of Target.
type TargetCheck struct {
	On    string  `json:"on"` // "value", "ratio" or "upper95" (extra["upper95"]: a rate shown with 95 % confidence)
	Op    string  `json:"op"` // ">=" or "<="
	Bound float64 `json:"bound"`
}

const (
	StatusMeasured    = "measured"
	StatusFailed      = "failed"           // the step ran but gave no usable number
	StatusMissing     = "missing"          // the program or benchmark does not exist
	StatusNotMeasured = "not measured yet" // no harness
)

const quickNote = "quick, not for comparison"

// Step names shared with run.sh.
const (
	stepCollectorGo = "collector-gobench"
	stepDetectorRun = "detector-fold"
	stepDetectorMem = "detector-state"
	stepVsGoflow2   = "collector-vs-goflow2"
	stepSink        = "sink"
)

// Build reads a run directory written by run.sh and computes the figures.
func Build(dir string, quick bool) (Results, error) {
	res := Results{Quick: quick}
	if quick {
		res.QuickNote = quickNote
	}
	b, err := os.ReadFile(filepath.Join(dir, "machine.json"))
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal(b, &res.Machine); err != nil {
		return res, fmt.Errorf("machine.json: %w", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "loadavg.end")); err == nil {
		if res.Machine.LoadAverageEnd, err = ParseLoadAvg(string(b)); err != nil {
			return res, err
		}
	}
	if res.Steps, err = readSteps(filepath.Join(dir, "steps.tsv")); err != nil {
		return res, err
	}
	steps := map[string]Step{}
	for _, s := range res.Steps {
		steps[s.Name] = s
	}
	var figs []Figure
	figs = append(figs, vsGoflow2Figures(dir, steps)...)
	figs = append(figs, detectorFigures(dir, steps)...)
	figs = append(figs, sinkFigures(dir, steps)...)
	figs = append(figs, qualityFigures(dir, steps)...)
	figs = append(figs, e2eFigures(dir, steps)...)
	figs = append(figs, collectorGoFigures(dir, steps)...)
	for i := range figs {
		f := &figs[i]
		f.Quick = quick
		f.Met = f.met()
	}
	res.Figures = figs
	return res, nil
}

// readSteps parses steps.tsv: name, exit code, seconds, load1, command.
func readSteps(path string) ([]Step, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	var out []Step
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		f := strings.SplitN(sc.Text(), "\t", 5)
		if len(f) != 5 {
			return nil, fmt.Errorf("%s:%d: want 5 tab-separated fields, got %d", path, n, len(f))
		}
		rc, err1 := strconv.Atoi(f[1])
		sec, err2 := strconv.ParseFloat(f[2], 64)
		load, err3 := strconv.ParseFloat(f[3], 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, Step{Name: f[0], ExitCode: rc, Seconds: sec, Load1: load, Command: f[4]})
	}
	return out, sc.Err()
}

func (f *Figure) met() *bool {
	if f.Check == nil {
		return nil
	}
	ok := false
	v := f.Value
	switch f.Check.On {
	case "ratio":
		v = f.Ratio
	case "upper95":
		v = nil
		if u, ok := f.Extra["upper95"]; ok {
			v = &u
		}
	}
	if f.Status == StatusMeasured && v != nil {
		switch f.Check.Op {
		case ">=":
			ok = *v >= f.Check.Bound
		case "<=":
			ok = *v <= f.Check.Bound
		}
	}
	return &ok
}

func ptr(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// fromStep fills what a figure takes from the step that measured it and
// decides its status when the step is absent or failed.
func fromStep(f Figure, s Step, ok bool) Figure {
	if !ok {
		f.Status = StatusMissing
		if f.Note == "" {
			f.Note = "step not run"
		}
		return f
	}
	f.Command, f.Load1 = s.Command, s.Load1
	if f.Status == "" {
		f.Status = StatusMeasured
	}
	if s.ExitCode != 0 && f.Value == nil { // a printed result is a completed benchmark whatever else failed
		msg := fmt.Sprintf("step %s exited %d", s.Name, s.ExitCode)
		if s.ExitCode == 124 {
			msg = fmt.Sprintf("step %s hit run.sh's time limit", s.Name)
		}
		f.Status = StatusFailed
		f.Note = strings.TrimPrefix(f.Note+"; "+msg, "; ")
	}
	return f
}

// parseLog reads a step's go test -bench log.
func parseLog(dir, step string) ([]Runs, error) {
	fh, err := os.Open(filepath.Join(dir, step+".txt"))
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	bs, err := ParseGoBench(fh)
	return GroupRuns(bs), err
}

func findRuns(rs []Runs, name string) (Runs, bool) {
	for _, r := range rs {
		if r.Name == name {
			return r, true
		}
	}
	return Runs{}, false
}

// failReason returns what the testing package printed under
// "--- FAIL: <bench>" in a step's log, or "".
func failReason(dir, step, bench string) string {
	b, err := os.ReadFile(filepath.Join(dir, step+".txt"))
	if err != nil {
		return ""
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if _, after, ok := strings.Cut(l, "--- FAIL: "+bench); ok && (after == "" || after[0] == '-' || after[0] == ' ') {
			for _, m := range lines[i+1:] {
				if strings.HasPrefix(m, "    ") {
					return strings.TrimSpace(m)
				}
				if strings.TrimSpace(m) != "" {
					break
				}
			}
			return "failed"
		}
	}
	return ""
}

// --- collector vs goflow2 (benchmarks/collector -json) ---

type collectorLine struct {
	Protocol           string  `json:"protocol"`
	Collector          string  `json:"collector"`
	Flows              int64   `json:"flows"`
	CPUSeconds         float64 `json:"cpu_seconds"`
	FlowsPerCPUSecond  float64 `json:"flows_per_cpu_second"`
	SentFlowsPerSecond float64 `json:"sent_flows_per_second"`
	WallSeconds        float64 `json:"wall_seconds"`
}

var protocolNames = map[string]string{"v9": "NetFlow v9", "ipfix": "IPFIX", "sflow": "sFlow v5"}

const goflow2Peer = "goflow2 v2.2.6 (-format=bin to /dev/null), same run"

func vsGoflow2Figures(dir string, steps map[string]Step) []Figure {
	s, ok := steps[stepVsGoflow2]
	var lines []collectorLine
	var readErr error
	if ok {
		b, err := os.ReadFile(filepath.Join(dir, stepVsGoflow2+".json"))
		if err == nil {
			err = json.Unmarshal(b, &lines)
		}
		readErr = err
	}
	find := func(proto, coll string) *collectorLine {
		for i := range lines {
			if lines[i].Protocol == proto && lines[i].Collector == coll {
				return &lines[i]
			}
		}
		return nil
	}
	var out, kafka []Figure
	for _, p := range []string{"v9", "ipfix", "sflow"} {
		f := Figure{ID: "collector.vs_goflow2." + p, Group: "collector", Unit: "flows/s per core",
			Name: protocolNames[p] + " collector throughput vs goflow2", PeerName: goflow2Peer,
			Target: "≥ 6× goflow2", Check: &TargetCheck{On: "ratio", Op: ">=", Bound: 6}}
		ours, theirs := find(p, "flowsentry"), find(p, "goflow2")
		switch {
		case readErr != nil:
			f.Note = "no results: " + readErr.Error()
		case ours == nil || theirs == nil:
			f.Note = "protocol missing from the results"
		default:
			f.Value, f.PeerValue = ptr(ours.FlowsPerCPUSecond), ptr(theirs.FlowsPerCPUSecond)
			if f.Value != nil && f.PeerValue != nil {
				f.Ratio = ptr(*f.Value / *f.PeerValue)
			}
			f.Extra = map[string]float64{"flows": float64(ours.Flows), "cpu_seconds": ours.CPUSeconds,
				"peer_flows": float64(theirs.Flows), "peer_cpu_seconds": theirs.CPUSeconds,
				"sent_flows_per_second": ours.SentFlowsPerSecond, "peer_sent_flows_per_second": theirs.SentFlowsPerSecond}
		}
		if f.Value == nil && ok {
			f.Status = StatusFailed
		}
		out = append(out, fromStep(f, s, ok))
		if k := find(p, "flowsentry+kafka"); k != nil {
			kf := Figure{ID: "collector.kafka." + p, Group: "collector", Unit: "flows/s per core",
				Name:  protocolNames[p] + " collector throughput producing to the local Kafka broker",
				Value: ptr(k.FlowsPerCPUSecond), Extra: map[string]float64{"flows": float64(k.Flows), "cpu_seconds": k.CPUSeconds},
				Note: "collector process CPU only; the broker's CPU is not counted"}
			kafka = append(kafka, fromStep(kf, s, ok))
		}
	}
	return append(out, kafka...)
}

// --- collector Go benchmarks ---

// Every collector benchmark counts one flow per b.N (checked in their
// sources), so ns/op is ns per flow.
var collectorPeers = map[string]struct{ bench, name string }{
	"BenchmarkAppendFlow": {"BenchmarkProtoMarshal", "proto.Marshal of the same pb.Flow (google.golang.org/protobuf)"},
}

func collectorGoFigures(dir string, steps map[string]Step) []Figure {
	s, ok := steps[stepCollectorGo]
	if !ok {
		return []Figure{fromStep(Figure{ID: "collector.go", Group: "collector-go", Name: "collector Go benchmarks", Unit: "ns/flow"}, s, false)}
	}
	rs, err := parseLog(dir, stepCollectorGo)
	if err != nil || len(rs) == 0 {
		f := Figure{ID: "collector.go", Group: "collector-go", Name: "collector Go benchmarks", Unit: "ns/flow", Status: StatusFailed, Note: "no benchmark lines in the log"}
		if err != nil {
			f.Note = "parsing the log: " + err.Error()
		}
		return []Figure{fromStep(f, s, true)}
	}
	var out []Figure
	for _, r := range rs {
		pkg := r.Pkg[strings.LastIndexByte(r.Pkg, '/')+1:]
		f := Figure{ID: "collector.go." + pkg + "." + strings.TrimPrefix(r.Name, "Benchmark"), Group: "collector-go",
			Name: pkg + "." + r.Name, Unit: "ns/flow", Runs: r.Values("ns/op"), Extra: map[string]float64{}}
		if ns, ok := r.Median("ns/op"); ok {
			f.Value = ptr(ns)
			if ns > 0 {
				f.Extra["flows/s per core"] = 1e9 / ns
			}
		}
		for unit, key := range map[string]string{"allocs/op": "allocs/flow", "B/op": "B/flow", "MB/s": "MB/s"} {
			if v, ok := r.Median(unit); ok {
				f.Extra[key] = v
			}
		}
		if p, ok := collectorPeers[r.Name]; ok {
			if pr, ok := findRuns(rs, p.bench); ok {
				if pv, ok := pr.Median("ns/op"); ok && f.Value != nil && *f.Value > 0 {
					f.PeerValue, f.PeerName, f.Ratio = ptr(pv), p.name, ptr(pv / *f.Value)
				}
			}
		}
		out = append(out, fromStep(f, s, true))
	}
	return out
}

// --- detector engine benchmarks ---

// detectorWindow is the engine's default window (detector/engine/config.go
// WindowSeconds: 10); the time-to-start target is one window + 1 s.
const detectorWindow = 10

func detectorFigures(dir string, steps map[string]Step) []Figure {
	fold := Figure{ID: "detector.fold", Group: "detector", Name: "detector flows folded into window state (BenchmarkFold)",
		Unit: "flows/s per core", Target: "≥ 2 M flows/s per core", Check: &TargetCheck{On: "value", Op: ">=", Bound: 2e6}}
	mem := Figure{ID: "detector.bytes_per_subnet", Group: "detector", Name: "detector memory per tracked subnet at rest (BenchmarkTargetMemory)",
		Unit: "B/subnet", Target: "≤ 2 KiB (2048 B)", Check: &TargetCheck{On: "value", Op: "<=", Bound: 2048}}
	tts := Figure{ID: "detector.time_to_start", Group: "detector", Name: "first attack flow to START, worst case (BenchmarkTimeToStart)",
		Unit: "s (event time)", Target: fmt.Sprintf("≤ window + 1 s (%d s)", detectorWindow+1), Check: &TargetCheck{On: "value", Op: "<=", Bound: detectorWindow + 1}}

	one := func(f Figure, step, bench, unit string, worst bool) Figure {
		s, ok := steps[step]
		if !ok {
			return fromStep(f, s, false)
		}
		rs, err := parseLog(dir, step)
		r, found := findRuns(rs, bench)
		switch {
		case err != nil:
			f.Status, f.Note = StatusFailed, "parsing the log: "+err.Error()
		case !found:
			f.Status, f.Note = StatusFailed, bench+" not in the output"
			if why := failReason(dir, step, bench); why != "" {
				f.Note = bench + " failed: " + why
			}
		default:
			f.Runs = r.Values(unit)
			if len(f.Runs) == 0 {
				f.Status, f.Note = StatusFailed, bench+" reported no "+unit
				break
			}
			v := median(f.Runs)
			if worst { // the largest: the target is a bound on the worst case
				v = f.Runs[0]
				for _, x := range f.Runs {
					v = max(v, x)
				}
			}
			f.Value = ptr(v)
			if unit == "flows/cpu-s" { // b.N counts flows in BenchmarkFold
				f.Extra = map[string]float64{}
				for u, key := range map[string]string{"flows/s": "flows/s wall", "allocs/op": "allocs/flow", "B/op": "B/flow"} {
					if x, ok := r.Median(u); ok {
						f.Extra[key] = x
					}
				}
			}
		}
		return fromStep(f, s, true)
	}
	fold = one(fold, stepDetectorRun, "BenchmarkFold", "flows/cpu-s", false)
	if fold.Value != nil {
		fold.Note = strings.TrimPrefix(fold.Note+"; median of runs; per CPU-second of the benchmark process (GC included)", "; ")
	}
	return []Figure{
		fold,
		one(mem, stepDetectorMem, "BenchmarkTargetMemory", "B/target", false),
		one(tts, stepDetectorMem, "BenchmarkTimeToStart", "s-to-START", true),
	}
}

// --- sink (benchmarks/sink/run.sh -> alerter/sink benchmarks) ---

// sinkDefaultBatch is the sink's default batch.max_rows
// (alerter/sink/config.go): the end-to-end figure the target is read on.
const sinkDefaultBatch = "batch=100000"

func sinkFigures(dir string, steps map[string]Step) []Figure {
	head := Figure{ID: "sink.e2e." + sinkDefaultBatch, Group: "sink", Name: "sink Kafka → ClickHouse, " + sinkDefaultBatch + " (default)",
		Unit: "rows/s", Target: "≥ 500 k rows/s", Check: &TargetCheck{On: "value", Op: ">=", Bound: 500e3}}
	s, ok := steps[stepSink]
	if !ok {
		head.Status, head.Note = StatusMissing, "benchmarks/sink/run.sh was not present when this run was made"
		return []Figure{head}
	}
	rs, err := parseLog(dir, stepSink)
	if err != nil || len(rs) == 0 {
		head.Status, head.Note = StatusFailed, "no benchmark lines in the log"
		if s.ExitCode == 0 { // the integration benchmarks skip when a service is down
			head.Note += " (Kafka or ClickHouse down, so the benchmarks skipped?)"
		}
		if err != nil {
			head.Note = "parsing the log: " + err.Error()
		}
		return []Figure{fromStep(head, s, true)}
	}
	var out, store []Figure // end-to-end first: it is the sink's figure
	sawHead := false
	for _, r := range rs {
		sub := strings.TrimPrefix(r.Name, "BenchmarkSinkEndToEnd/")
		f := Figure{Group: "sink", Unit: "rows/s", Runs: r.Values("rows/s")}
		if sub != r.Name {
			f.ID, f.Name = "sink.e2e."+sub, "sink Kafka → ClickHouse, "+sub
			f.Target, f.Check = head.Target, head.Check
			if sub == sinkDefaultBatch {
				f.Name, sawHead = head.Name, true
			}
		} else {
			sub = strings.TrimPrefix(r.Name, "BenchmarkInsertFlows/")
			f.ID, f.Name = "sink.insert."+sub, "ClickHouse store alone (no Kafka), "+sub
			f.Note = "a ceiling for the sink, not the sink's figure"
		}
		dst := &out
		if strings.HasPrefix(f.ID, "sink.insert.") {
			dst = &store
		}
		if v, ok := r.Median("rows/s"); ok {
			f.Value = ptr(v)
			f.Extra = map[string]float64{}
			for _, u := range []string{"sink-cores", "clickhouse-cores"} {
				if x, ok := r.Median(u); ok {
					f.Extra[u] = x
				}
			}
			if c := f.Extra["sink-cores"]; c > 0 {
				f.Extra["rows/s per sink core"] = v / c
			}
		} else {
			f.Status, f.Note = StatusFailed, "no rows/s reported"
		}
		*dst = append(*dst, fromStep(f, s, true))
	}
	if !sawHead {
		name := "BenchmarkSinkEndToEnd/" + sinkDefaultBatch
		head.Status, head.Note = StatusFailed, name+" not in the output"
		if why := failReason(dir, stepSink, name); why != "" {
			head.Note = name + " failed: " + why
		}
		out = append([]Figure{fromStep(head, s, true)}, out...)
	}
	return append(out, store...)
}

// --- end-to-end latency ---

const stepE2E = "e2e-latency"

// e2eFigure is the head figure of benchmarks/latency, said honestly missing
// or failed when the step gave nothing.
func e2eFigure() Figure {
	return Figure{ID: "e2e.latency", Group: "e2e", Name: "end-to-end latency, datagram → notification", Unit: "s",
		Status: StatusNotMeasured, Note: "benchmarks/latency did not run"}
}

// e2eFigures reads the figures benchmarks/latency wrote (already in the
// Figure shape); the step adds command, load and status.
func e2eFigures(dir string, steps map[string]Step) []Figure {
	s, ok := steps[stepE2E]
	if !ok {
		return []Figure{fromStep(e2eFigure(), s, false)}
	}
	var file struct {
		Figures []Figure `json:"figures"`
	}
	b, err := os.ReadFile(filepath.Join(dir, stepE2E+".json"))
	if err == nil {
		err = json.Unmarshal(b, &file)
	}
	if err == nil && len(file.Figures) == 0 {
		err = errors.New("no figures in " + stepE2E + ".json")
	}
	if err != nil {
		f := e2eFigure()
		f.Status, f.Note = StatusFailed, "no results from benchmarks/latency: "+err.Error()
		return []Figure{fromStep(f, s, true)}
	}
	for i := range file.Figures {
		file.Figures[i] = fromStep(file.Figures[i], s, true)
	}
	return file.Figures
}
