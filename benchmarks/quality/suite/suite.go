// Package suite merges scenarios into one run: disjoint subnets, one
// common event timeline (every scenario's live traffic starts at the same
// instant; its history before it), so that one collector and one detector
// serve all of them and each scenario is scored on its own.
package suite

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/packetworks/flowsentry/benchmarks/quality/flows"
	"github.com/packetworks/flowsentry/benchmarks/scenario"
	"github.com/packetworks/flowsentry/schemas/inventory"
)

// Suite is the merged run.
type Suite struct {
	Scenarios []*flows.Scenario
	Gens      []*scenario.Generator
	Inv       *inventory.Inventory
	InvFile   inventory.File
	// Live is when every scenario's live traffic starts; Start the
	// earliest history; End the latest end of live traffic.
	Live, Start, End time.Time
}

// DefaultLive anchors runs on a fixed past instant (a Wednesday, 14:00
// UTC) so that the daily and weekly shapes, hence the scores, are the same
// on every run for a seed.
var DefaultLive = time.Date(2026, 1, 7, 14, 0, 0, 0, time.UTC)

// Files lists the scenario files of a directory, sorted.
func Files(dir string) ([]string, error) {
	fs, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(fs) == 0 {
		return nil, fmt.Errorf("%s: no scenario (*.yaml)", dir)
	}
	sort.Strings(fs)
	return fs, nil
}

// Load reads the scenario files and merges them on live.
func Load(files []string, live time.Time) (*Suite, error) {
	s := &Suite{Live: live, Start: live, End: live}
	for i, f := range files {
		sc, err := scenario.Load(f)
		if err != nil {
			return nil, err
		}
		name := sc.Name
		if name == "" {
			name = filepath.Base(f)
		}
		for _, o := range s.Scenarios {
			if o.Name == name {
				return nil, fmt.Errorf("%s: scenario name %q also used by another file", f, name)
			}
		}
		// Two IPFIX domains per router (ordinary and fragment records).
		s.Scenarios = append(s.Scenarios, &flows.Scenario{Name: name, SC: sc, Domain: uint32(1000 * (i + 1))})
		s.Start = minTime(s.Start, live.Add(-sc.History))
		s.End = maxTime(s.End, live.Add(sc.LastEnd()+sc.Tail))
	}
	var err error
	if s.Inv, s.InvFile, err = flows.Inventory(s.Scenarios); err != nil {
		return nil, err
	}
	s.Start = s.Start.Truncate(time.Second)
	return s, nil
}

// Window is when scenario i has traffic (up to the suite's end, which a
// caller may bring forward to cut a run short).
func (s *Suite) Window(i int) (from, to time.Time) {
	sc := s.Scenarios[i].SC
	return s.Live.Add(-sc.History), minTime(s.End, s.Live.Add(sc.LastEnd()+sc.Tail))
}

// Labels returns scenario i's ground truth.
func (s *Suite) Labels(i int) []scenario.Label { return s.Scenarios[i].SC.Labels(s.Live) }

// Stepper walks the common timeline one second at a time.
type Stepper struct {
	s      *Suite
	cursor time.Time
	bufs   [][]scenario.Record
}

// Stepper returns a walker from the suite's start; it creates the
// scenarios' generators afresh (a run is reproducible from its seeds).
func (s *Suite) Stepper() *Stepper {
	s.Gens = nil
	for _, x := range s.Scenarios {
		g := scenario.NewGenerator(x.SC)
		g.StartLive(s.Live)
		s.Gens = append(s.Gens, g)
	}
	return &Stepper{s: s, cursor: s.Start, bufs: make([][]scenario.Record, len(s.Scenarios))}
}

// Next generates the records of the next second for every scenario whose
// window holds it and calls fn per scenario; false at the end.
func (st *Stepper) Next(fn func(i int, recs []scenario.Record)) (from time.Time, ok bool) {
	if !st.cursor.Before(st.s.End) {
		return st.cursor, false
	}
	from = st.cursor
	to := from.Add(time.Second)
	for i := range st.s.Scenarios {
		a, b := st.s.Window(i)
		if from.Before(a) || !from.Before(b) {
			continue
		}
		st.bufs[i] = st.s.Gens[i].Step(from, to, st.bufs[i][:0])
		fn(i, st.bufs[i])
	}
	st.cursor = to
	return from, true
}

// Done is how much of the timeline has been walked.
func (st *Stepper) Done() time.Duration { return st.cursor.Sub(st.s.Start) }

// SubnetDays is scenario i's exposure: subnets times the days it is
// scored after warm-up (warmup of event time at its start).
func (s *Suite) SubnetDays(i int, warmup time.Duration) float64 {
	a, b := s.Window(i)
	d := b.Sub(a) - warmup
	if d < 0 {
		d = 0
	}
	return float64(len(s.Scenarios[i].SC.Prefixes())) * d.Hours() / 24
}

// WriteTruth writes every scenario's labels as CSV beside the run's other
// outputs: the ground truth the scores are computed from.
func (s *Suite) WriteTruth(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	fmt.Fprintln(f, "scenario,name,kind,class,benign,customer,subnet,direction,start,end,magnitude,level,pps")
	for i, x := range s.Scenarios {
		for _, l := range s.Labels(i) {
			fmt.Fprintf(f, "%s,%s,%s,%s,%v,%s,%s,%s,%s,%s,%.3g,%.3g,%.0f\n", x.Name, l.Name, l.Kind, l.Class, l.Benign,
				x.CustomerID(l.Customer), l.Subnet, l.Direction, l.Start.Format(time.RFC3339), l.End.Format(time.RFC3339),
				l.Magnitude, l.Level, l.PPS)
		}
	}
	return f.Close()
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
