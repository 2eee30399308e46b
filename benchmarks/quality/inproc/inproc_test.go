package inproc

import (
	"testing"
	"time"

	"github.com/packetworks/flowsentry/benchmarks/quality/flows"
	"github.com/packetworks/flowsentry/benchmarks/quality/suite"
	"github.com/packetworks/flowsentry/benchmarks/scenario"
)

// TestEngineSeesAnAttack folds a small scenario through the engine
// in-process: the SYN flood on a warm target is one syn_flood incident,
// and the untouched subnet raises nothing.
func TestEngineSeesAnAttack(t *testing.T) {
	s, err := suite.Load([]string{"testdata/small.yaml"}, suite.DefaultLive)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(30)
	if err != nil {
		t.Fatal(err)
	}
	conv := flows.NewConverter(s.Inv, e)
	st := s.Stepper()
	for {
		sec, ok := st.Next(func(i int, recs []scenario.Record) {
			x := s.Scenarios[i]
			for j := range recs {
				r := &recs[j]
				conv.Flow(r, x.SC.Exporters[r.Exporter].Sampling, x.Domain, r.Flow.End)
			}
		})
		if !ok {
			break
		}
		e.Advance(sec.Add(time.Second))
	}
	incs := e.Incidents()
	if len(incs) != 1 || incs[0].Class != "syn_flood" || incs[0].Subnet != "198.18.0.0/24" || incs[0].Direction != "inbound" {
		t.Fatalf("incidents %+v, want one inbound syn_flood on 198.18.0.0/24", incs)
	}
	attack := s.Live.Add(63 * time.Second)
	if d := incs[0].Opened.Sub(attack); d <= 0 || d > 11*time.Second || incs[0].End.IsZero() {
		t.Fatalf("opened %s after the attack started, ended %s", d, incs[0].End)
	}
	if e.Dropped("late") != 0 || e.Flows == 0 {
		t.Fatalf("%d late, %d folded", e.Dropped("late"), e.Flows)
	}
}

func BenchmarkBenignDay(b *testing.B) {
	s, err := suite.Load([]string{"testdata/small.yaml"}, suite.DefaultLive)
	if err != nil {
		b.Fatal(err)
	}
	e, _ := New(30)
	conv := flows.NewConverter(s.Inv, e)
	st := s.Stepper()
	n := 0
	for b.Loop() {
		sec, ok := st.Next(func(i int, recs []scenario.Record) {
			x := s.Scenarios[i]
			for j := range recs {
				conv.Flow(&recs[j], x.SC.Exporters[recs[j].Exporter].Sampling, x.Domain, recs[j].Flow.End)
				n++
			}
		})
		if !ok {
			st = s.Stepper()
		}
		e.Advance(sec.Add(time.Second))
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
