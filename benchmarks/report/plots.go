package main

import (
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// series is one set of bars: a value per category (NaN: not measured).
type series struct {
	name   string
	values []float64
}

type barPlot struct {
	title, unit string
	categories  []string
	series      []series
	target      float64 // 0: none
	targetLabel string
	// targets marks a target per category (NaN: none), e.g. 6× the peer.
	targets    []float64
	horizontal bool
}

// save draws the plot as PNG; categories are along X (or Y when horizontal).
func (bp barPlot) save(path string) error {
	if bp.horizontal { // NominalY counts from the bottom: keep the report's order top-down
		bp.categories = reversed(bp.categories)
		ss := make([]series, len(bp.series))
		for i, s := range bp.series {
			ss[i] = series{s.name, reversed(s.values)}
		}
		bp.series = ss
	}
	p := plot.New()
	p.Title.Text = bp.title
	n := float64(len(bp.categories))
	// Bars fill about 70 % of a category's slot: 28 pt rows when
	// horizontal, a share of the 640 pt width otherwise.
	slot := 560 / n
	if bp.horizontal {
		slot = 28
	}
	width := vg.Points(math.Min(60, 0.7*slot/float64(len(bp.series))))
	for i, s := range bp.series {
		vals := make(plotter.Values, len(s.values))
		for j, v := range s.values {
			if !math.IsNaN(v) {
				vals[j] = v
			}
		}
		b, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return err
		}
		b.Horizontal = bp.horizontal
		b.Color = plotutil.Color(i)
		b.LineStyle.Width = 0
		b.Offset = vg.Length(float64(i)-float64(len(bp.series)-1)/2) * width
		p.Add(b)
		if len(bp.series) > 1 {
			p.Legend.Add(s.name, b)
		}
	}
	if bp.target > 0 {
		xy := plotter.XYs{{X: -0.5, Y: bp.target}, {X: n - 0.5, Y: bp.target}}
		if bp.horizontal {
			xy = plotter.XYs{{X: bp.target, Y: -0.5}, {X: bp.target, Y: n - 0.5}}
		}
		l, err := plotter.NewLine(xy)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(len(bp.series) + 1)
		l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(bp.targetLabel, l)
	}
	var marks plotter.XYs
	for i, t := range bp.targets {
		if !math.IsNaN(t) && t > 0 {
			marks = append(marks, plotter.XY{X: float64(i), Y: t})
		}
	}
	if len(marks) > 0 {
		sc, err := plotter.NewScatter(marks)
		if err != nil {
			return err
		}
		sc.GlyphStyle.Shape = draw.PyramidGlyph{}
		sc.GlyphStyle.Radius = vg.Points(5)
		sc.GlyphStyle.Color = plotutil.Color(len(bp.series) + 1)
		p.Add(sc)
		p.Legend.Add(bp.targetLabel, sc)
	}
	// Headroom above the tallest bar or mark so the legend does not cover it.
	top := bp.target
	for _, s := range bp.series {
		for _, v := range s.values {
			if !math.IsNaN(v) {
				top = math.Max(top, v)
			}
		}
	}
	for _, m := range marks {
		top = math.Max(top, m.Y)
	}
	p.Legend.Top = true
	h := vg.Points(320)
	if bp.horizontal {
		p.NominalY(bp.categories...)
		p.Y.Tick.Label.Font.Size = vg.Points(9)
		p.X.Label.Text, p.X.Min, p.X.Max = bp.unit, 0, top*1.25
		p.X.Tick.Marker = humanTicks{}
		h = vg.Points(math.Max(200, 28*n+80))
	} else {
		p.NominalX(bp.categories...)
		p.Y.Label.Text, p.Y.Min, p.Y.Max = bp.unit, 0, top*1.25
		p.Y.Tick.Marker = humanTicks{}
	}
	return p.Save(vg.Points(640), h, path)
}

// WritePlots writes the throughput plots into dir and returns them by
// name (collector, detector, sink, collector-go), as file names relative
// to dir. Groups with nothing measured get no plot.
func WritePlots(dir string, r Results) (map[string]string, error) {
	out := map[string]string{}
	quick := ""
	if r.Quick {
		quick = " (" + quickNote + ")"
	}
	val := func(f Figure) float64 {
		if f.Value == nil {
			return math.NaN()
		}
		return *f.Value
	}
	var plots []struct {
		name string
		bp   barPlot
	}
	add := func(name string, bp barPlot) {
		for _, s := range bp.series {
			for _, v := range s.values {
				if !math.IsNaN(v) && v > 0 {
					plots = append(plots, struct {
						name string
						bp   barPlot
					}{name, bp})
					return
				}
			}
		}
	}

	// Collector vs goflow2: grouped bars per protocol.
	coll := barPlot{title: "Collector vs goflow2, same run" + quick, unit: "flows/s per core", targetLabel: "target: 6× goflow2"}
	ours, kafka, theirs := series{name: "Flowsentry"}, series{name: "Flowsentry + Kafka"}, series{name: "goflow2"}
	for _, f := range r.Figures {
		if p, ok := strings.CutPrefix(f.ID, "collector.vs_goflow2."); ok {
			coll.categories = append(coll.categories, protocolNames[p])
			ours.values = append(ours.values, val(f))
			theirs.values = append(theirs.values, math.NaN())
			coll.targets = append(coll.targets, math.NaN())
			if f.PeerValue != nil {
				theirs.values[len(theirs.values)-1] = *f.PeerValue
				coll.targets[len(coll.targets)-1] = f.Check.Bound * *f.PeerValue
			}
			kafka.values = append(kafka.values, math.NaN())
			for _, k := range r.Figures {
				if k.ID == "collector.kafka."+p {
					kafka.values[len(kafka.values)-1] = val(k)
				}
			}
		}
	}
	coll.series = []series{ours, theirs}
	for _, v := range kafka.values {
		if !math.IsNaN(v) {
			coll.series = []series{ours, kafka, theirs}
			break
		}
	}
	add("collector", coll)

	// Detector fold rate, each run against the target.
	det := barPlot{title: "Detector fold rate (BenchmarkFold)" + quick, unit: "flows/s per core (CPU-second)", target: 2e6, targetLabel: "target 2 M"}
	for _, f := range r.Figures {
		if f.ID == "detector.fold" {
			s := series{name: "runs", values: f.Runs}
			for i := range f.Runs {
				det.categories = append(det.categories, fmt.Sprintf("run %d", i+1))
			}
			det.series = []series{s}
		}
	}
	add("detector", det)

	// Sink rows/s per benchmark.
	sink := barPlot{title: "Sink into ClickHouse" + quick, unit: "rows/s", target: 500e3, targetLabel: "target 500 k (sink end to end)", horizontal: true}
	s := series{name: "rows/s"}
	for _, f := range r.Figures {
		if f.Group == "sink" && f.Value != nil {
			sink.categories = append(sink.categories, strings.TrimPrefix(f.ID, "sink."))
			s.values = append(s.values, *f.Value)
		}
	}
	sink.series = []series{s}
	add("sink", sink)

	// Collector Go benchmarks as flows/s per core.
	cg := barPlot{title: "Collector Go benchmarks" + quick, unit: "flows/s per core (1e9 / ns per flow)", horizontal: true}
	s = series{name: "flows/s"}
	for _, f := range r.Figures {
		if f.Group == "collector-go" && f.Value != nil && f.Extra["flows/s per core"] > 0 {
			cg.categories = append(cg.categories, strings.TrimPrefix(f.ID, "collector.go."))
			s.values = append(s.values, f.Extra["flows/s per core"])
		}
	}
	cg.series = []series{s}
	add("collector-go", cg)

	add("quality", qualityPlot(r, quick))

	for _, pl := range plots {
		file := pl.name + ".png"
		if err := pl.bp.save(filepath.Join(dir, file)); err != nil {
			return out, fmt.Errorf("plot %s: %w", pl.name, err)
		}
		out[pl.name] = file
	}
	return out, nil
}

func reversed[T any](s []T) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[len(s)-1-i] = v
	}
	return out
}

// humanTicks labels the default ticks as 500 k, 2 M.
type humanTicks struct{}

func (humanTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = human(ts[i].Value)
		}
	}
	return ts
}
