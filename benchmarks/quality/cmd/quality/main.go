// Command quality measures detection quality (make bench step "quality"):
// it merges the scenarios of benchmarks/quality/scenarios into one run of
// the real pipeline (collector and detector binaries, Kafka), scores the
// detector's incidents against each scenario's ground truth, scores a
// FastNetMon-style static-threshold detector on the same flows, and folds
// long benign scenarios through the detector's engine in-process for the
// false-incident rate per 1,000 subnet-days. It writes one JSON file that
// benchmarks/report turns into figures; README.md (Detection quality)
// describes the method.
//
//	quality [-quick] [-bin bin] [-brokers 127.0.0.1:9092] [-out quality.json] [-dir DIR]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/packetworks/flowsentry/benchmarks/quality/flows"
	"github.com/packetworks/flowsentry/benchmarks/quality/inproc"
	"github.com/packetworks/flowsentry/benchmarks/quality/pipeline"
	"github.com/packetworks/flowsentry/benchmarks/quality/score"
	"github.com/packetworks/flowsentry/benchmarks/quality/static"
	"github.com/packetworks/flowsentry/benchmarks/quality/suite"
	"github.com/packetworks/flowsentry/benchmarks/scenario"
	"github.com/packetworks/flowsentry/schemas/pb"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quality:", err)
		os.Exit(1)
	}
}

type options struct {
	scenarios, benign, only, bin, repo, brokers, out, dir string
	rate                                                  float64
	warmup                                                int
	benignDays                                            float64
	quick, noPipeline, dry                                bool
}

func run() error {
	var o options
	flag.StringVar(&o.scenarios, "scenarios", "benchmarks/quality/scenarios", "directory of scenario files run through the pipeline")
	flag.StringVar(&o.benign, "benign", "benchmarks/quality/scenarios/inproc", "directory of benign scenario files folded in-process (\"\": none)")
	flag.StringVar(&o.only, "only", "", "comma-separated scenario names to run (default: all; -quick: its smoke set)")
	flag.StringVar(&o.bin, "bin", "", "directory with the collector and detector binaries (default: go build them)")
	flag.StringVar(&o.repo, "repo", ".", "repository root (for go build)")
	flag.StringVar(&o.brokers, "brokers", "127.0.0.1:9092", "Kafka bootstrap brokers, comma-separated")
	flag.StringVar(&o.out, "out", "quality.json", "result file (JSON, read by benchmarks/report)")
	flag.StringVar(&o.dir, "dir", "", "work directory: configs, logs, truth.csv (default: a temporary one)")
	flag.Float64Var(&o.rate, "rate", 50000, "records sent to the collector per second (wall clock)")
	flag.IntVar(&o.warmup, "warmup", 60, "detector baseline.warmup_windows (production: 360)")
	flag.Float64Var(&o.benignDays, "benign-days", 0, "cap on each in-process benign scenario's days (0: as written)")
	flag.BoolVar(&o.quick, "quick", false, "smoke run: a few scenarios, short benign run (figures not for comparison)")
	flag.BoolVar(&o.noPipeline, "no-pipeline", false, "skip the pipeline run (in-process parts only)")
	flag.BoolVar(&o.dry, "dry", false, "only generate the pipeline scenarios and print their record counts (sizing a suite)")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.dir == "" {
		d, err := os.MkdirTemp("", "flowsentry-quality-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		o.dir = d
	} else if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return err
	}
	if o.quick && o.only == "" {
		o.only = strings.Join(quickSet, ",")
	}
	if o.quick && o.benignDays == 0 {
		o.benignDays = 2
	}
	res := Result{Quick: o.quick, Warmup: o.warmup, Rate: o.rate, Live: suite.DefaultLive, Static: static.Defaults(),
		Slack: score.DefaultOptions()}
	t0 := time.Now()
	if o.dry {
		return dryRun(o)
	}
	if !o.noPipeline {
		if err := pipelineRun(ctx, o, log, &res); err != nil {
			return err
		}
	}
	if o.benign != "" {
		if err := benignRun(o, log, &res); err != nil {
			return err
		}
	}
	res.Seconds = time.Since(t0).Seconds()
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	printSummary(&res)
	return nil
}

// quickSet is QUICK=1's smoke test: small, one of each path.
var quickSet = []string{"syn-flood-sweep", "amplification-ntp", "benign-pipeline"}

// Result is the JSON the report reads.
type Result struct {
	Quick  bool          `json:"quick"`
	Warmup int           `json:"warmup_windows"`
	Rate   float64       `json:"rate"`
	Live   time.Time     `json:"live"`
	Static static.Config `json:"static_config"`
	Slack  score.Options `json:"matching"`
	// Pipeline: the real collector and detector; Static: the baseline
	// on the same records; InprocCheck: the same records folded through
	// the engine in-process (agreement with the pipeline).
	Pipeline    *pipeline.Stats `json:"pipeline,omitempty"`
	Ours        *Scored         `json:"ours,omitempty"`
	StaticRes   *Scored         `json:"static,omitempty"`
	InprocCheck *Scored         `json:"inproc_check,omitempty"`
	// Benign: false incidents per 1,000 subnet-days.
	BenignPipeline []Benign `json:"benign_pipeline,omitempty"`
	BenignInproc   []Benign `json:"benign_inproc,omitempty"`
	Seconds        float64  `json:"seconds"`
}

// Scored is one detector's results over the pipeline scenarios.
type Scored struct {
	Summary   score.Summary            `json:"summary"`
	Scenarios map[string]score.Summary `json:"scenarios"`
	Labels    []score.LabelResult      `json:"labels"`
	Incidents []score.IncidentResult   `json:"incidents"`
}

// Benign is the false-incident rate of one benign-only scenario.
type Benign struct {
	Scenario   string  `json:"scenario"`
	Detector   string  `json:"detector"` // ours or static
	Path       string  `json:"path"`     // pipeline or inproc
	SubnetDays float64 `json:"subnet_days"`
	Incidents  int     `json:"incidents"` // outside any benign event
	OnEvents   int     `json:"incidents_on_benign_events"`
	Events     int     `json:"benign_events"`
	Per1000    float64 `json:"per_1000_subnet_days"`
	Upper95    float64 `json:"upper95_per_1000_subnet_days"`
	// ByClass counts the false incidents by class and direction.
	ByClass map[string]int `json:"by_class,omitempty"`
	// Examples are the first false incidents, as evidence.
	Examples []score.Incident `json:"examples,omitempty"`
	Flows    uint64           `json:"flows,omitempty"`
	Seconds  float64          `json:"seconds,omitempty"`
}

// loadSuite merges the pipeline scenarios (those -only names).
func loadSuite(o options) (*suite.Suite, error) {
	files, err := suite.Files(o.scenarios)
	if err != nil {
		return nil, err
	}
	if o.only != "" {
		files = nil
		for _, name := range strings.Split(o.only, ",") {
			f := filepath.Join(o.scenarios, name+".yaml")
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("-only: no scenario file %s", f)
			}
			files = append(files, f)
		}
	}
	return suite.Load(files, suite.DefaultLive)
}

// observer feeds the static detector and the in-process engine with the
// records the pipeline is sent.
type observer struct {
	s      *suite.Suite
	conv   *flows.Converter
	static *static.Detector
	eng    *inproc.Engine
}

func (o *observer) Record(i int, r *scenario.Record) {
	x := o.s.Scenarios[i]
	o.conv.Flow(r, x.SC.Exporters[r.Exporter].Sampling, x.Domain+2*uint32(r.Exporter), r.Flow.End)
}

func (o *observer) Flow(f *pb.Flow) {
	o.static.Flow(f)
	if o.eng != nil {
		o.eng.Flow(f)
	}
}

func (o *observer) Tick(sec time.Time) {
	o.static.Tick(sec)
	if o.eng != nil {
		o.eng.Advance(sec.Add(time.Second))
	}
}

func newObserver(s *suite.Suite, warmup int, withEngine bool) (*observer, error) {
	ob := &observer{s: s, static: static.New(static.Defaults())}
	if withEngine {
		eng, err := inproc.New(warmup)
		if err != nil {
			return nil, err
		}
		ob.eng = eng
	}
	ob.conv = flows.NewConverter(s.Inv, ob)
	return ob, nil
}

func pipelineRun(ctx context.Context, o options, log *slog.Logger, res *Result) error {
	s, err := loadSuite(o)
	if err != nil {
		return err
	}
	if err := s.WriteTruth(filepath.Join(o.dir, "truth.csv")); err != nil {
		return err
	}
	ob, err := newObserver(s, o.warmup, true)
	if err != nil {
		return err
	}
	log.Info("pipeline run", "scenarios", len(s.Scenarios), "event_time", s.End.Sub(s.Start).String())
	cfg := pipeline.Config{Brokers: strings.Split(o.brokers, ","), Bin: o.bin, Repo: o.repo, Dir: o.dir, Rate: o.rate, Warmup: o.warmup, Log: log}
	incs, st, err := pipeline.Run(ctx, cfg, s, ob)
	if err != nil {
		return err
	}
	res.Pipeline = &st
	warm := time.Duration(o.warmup) * 10 * time.Second
	res.Ours, res.BenignPipeline = scoreAll(s, incs, "ours", "pipeline", res.Slack, warm)
	var sb []Benign
	res.StaticRes, sb = scoreAll(s, ob.static.Incidents(), "static", "pipeline", res.Slack, warm)
	res.BenignPipeline = append(res.BenignPipeline, sb...)
	res.InprocCheck, _ = scoreAll(s, ob.eng.Incidents(), "ours", "inproc", res.Slack, warm)
	return nil
}

// window is the detector's default window (engine.window_seconds).
const window = 10 * time.Second

// scoreAll splits incidents by scenario (by subnet), scores each, and
// returns the false-incident rate of the benign-only ones.
func scoreAll(s *suite.Suite, incs []score.Incident, det, path string, opt score.Options, warm time.Duration) (*Scored, []Benign) {
	owner := map[string]int{}
	for i, x := range s.Scenarios {
		for _, p := range x.SC.Prefixes() {
			owner[p.String()] = i
		}
	}
	per := make([][]score.Incident, len(s.Scenarios))
	for _, in := range incs {
		if i, ok := owner[in.Subnet]; ok {
			// Only what the scenario's own window holds: its subnets fall
			// silent after it (a drop no label explains).
			// Windows straddling that instant are partly empty by
			// construction: incidents starting there are not scored.
			if _, to := s.Window(i); !in.Start.Add(window).After(to) {
				per[i] = append(per[i], in)
			}
		}
	}
	out := &Scored{Scenarios: map[string]score.Summary{}}
	var benign []Benign
	for i, x := range s.Scenarios {
		lr, ir := score.Match(x.Name, s.Labels(i), per[i], opt)
		out.Labels = append(out.Labels, lr...)
		out.Incidents = append(out.Incidents, ir...)
		sum := score.Summarize(lr, ir)
		out.Scenarios[x.Name] = sum
		if attacks(lr) == 0 {
			b := benignOf(x.Name, det, path, s.SubnetDays(i, warm), sum)
			for _, in := range ir {
				if !in.True && !strings.HasPrefix(in.Reason, "benign ") {
					if b.ByClass == nil {
						b.ByClass = map[string]int{}
					}
					b.ByClass[in.Class+" "+in.Direction]++
					if len(b.Examples) < 10 {
						b.Examples = append(b.Examples, in.Incident)
					}
				}
			}
			benign = append(benign, b)
		}
	}
	out.Summary = score.Summarize(out.Labels, out.Incidents)
	return out, benign
}

func attacks(lr []score.LabelResult) int {
	n := 0
	for _, l := range lr {
		if !l.Benign {
			n++
		}
	}
	return n
}

func benignOf(name, det, path string, days float64, sum score.Summary) Benign {
	b := Benign{Scenario: name, Detector: det, Path: path, SubnetDays: days, Incidents: sum.FalseIncidents - sum.FalseOnBenign,
		OnEvents: sum.FalseOnBenign, Events: sum.BenignEvents}
	if days > 0 {
		b.Per1000 = 1000 * float64(b.Incidents) / days
		b.Upper95 = 1000 * score.UpperBound95(b.Incidents, days)
	}
	return b
}

// benignRun folds the benign scenarios through the engine in-process (and
// the static detector), one scenario at a time.
func benignRun(o options, log *slog.Logger, res *Result) error {
	files, err := suite.Files(o.benign)
	if err != nil {
		return err
	}
	warm := time.Duration(o.warmup) * 10 * time.Second
	for _, f := range files {
		t0 := time.Now()
		s, err := suite.Load([]string{f}, suite.DefaultLive)
		if err != nil {
			return err
		}
		if o.benignDays > 0 {
			if cap := s.Live.Add(time.Duration(o.benignDays * 24 * float64(time.Hour))); s.End.After(cap) {
				s.End = cap
			}
		}
		// The engine only: the static detector's benign figure comes from
		// the pipeline's benign scenario (its per-key maps would double
		// this run's time).
		eng, err := inproc.New(o.warmup)
		if err != nil {
			return err
		}
		conv := flows.NewConverter(s.Inv, eng)
		x := s.Scenarios[0]
		st := s.Stepper()
		for {
			sec, ok := st.Next(func(_ int, recs []scenario.Record) {
				for j := range recs {
					r := &recs[j]
					conv.Flow(r, x.SC.Exporters[r.Exporter].Sampling, x.Domain+2*uint32(r.Exporter), r.Flow.End)
				}
			})
			if !ok {
				break
			}
			eng.Advance(sec.Add(time.Second))
		}
		_, bs := scoreAll(s, eng.Incidents(), "ours", "inproc", res.Slack, warm)
		for _, b := range bs {
			b.Seconds, b.Flows = time.Since(t0).Seconds(), eng.Flows
			res.BenignInproc = append(res.BenignInproc, b)
		}
		log.Info("benign in-process", "scenario", x.Name, "flows", eng.Flows, "seconds", time.Since(t0).Seconds())
	}
	return nil
}

func printSummary(r *Result) {
	p := func(name string, sc *Scored) {
		if sc == nil {
			return
		}
		s := sc.Summary
		fmt.Printf("%-7s recall>=3x %.3f precision>=3x %.3f  ttd p50 %.1f s p95 %.1f s  incidents %d (false %d, on benign events %d)  duplicates %d fragments %d\n",
			name, float64(s.Ge3x.Recall), float64(s.Ge3x.Precision), float64(s.TTDp50), float64(s.TTDp95), s.Incidents,
			s.FalseIncidents, s.FalseOnBenign, s.Duplicates, s.Fragments)
		for _, c := range scenario.Kinds {
			if st := s.Classes[c]; st != nil && st.Labels > 0 {
				fmt.Printf("        %-15s recall %.2f precision %.2f f1 %.2f (%d labels, %d incidents)\n", c, float64(st.Recall),
					float64(st.Precision), float64(st.F1), st.Labels, st.Incidents)
			}
		}
	}
	if r.Pipeline != nil {
		fmt.Printf("pipeline: %d records in %.1f s (%.0f/s, %.0fx event time), socket drops %.0f, late %.0f, %d events\n",
			r.Pipeline.Records, r.Pipeline.SendSeconds, r.Pipeline.RecordsPerSec, r.Pipeline.Compression, r.Pipeline.SocketDrops,
			r.Pipeline.Late, r.Pipeline.Events)
	}
	p("ours", r.Ours)
	p("static", r.StaticRes)
	p("inproc", r.InprocCheck)
	for _, b := range append(append([]Benign(nil), r.BenignPipeline...), r.BenignInproc...) {
		fmt.Printf("benign %-8s %-6s %-22s %.1f subnet-days: %d false incidents (%.2f per 1000, 95%% upper %.1f), %d on %d benign events\n",
			b.Path, b.Detector, b.Scenario, b.SubnetDays, b.Incidents, b.Per1000, b.Upper95, b.OnEvents, b.Events)
	}
}

// dryRun prints how many records each scenario sends: the pipeline's
// cost is about records / -rate seconds.
func dryRun(o options) error {
	s, err := loadSuite(o)
	if err != nil {
		return err
	}
	n := make([]int, len(s.Scenarios))
	st := s.Stepper()
	for {
		if _, ok := st.Next(func(i int, recs []scenario.Record) { n[i] += len(recs) }); !ok {
			break
		}
	}
	total := 0
	for i, x := range s.Scenarios {
		a, b := s.Window(i)
		fmt.Printf("%-24s %9d records %8s\n", x.Name, n[i], b.Sub(a))
		total += n[i]
	}
	fmt.Printf("%-24s %9d records, %.0f s at -rate %.0f\n", "total", total, float64(total)/o.rate, o.rate)
	return nil
}
