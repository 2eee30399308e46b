// Package inproc folds generated flows through the detector's engine in
// this process: the same code the detector's Kafka worker runs
// (detector/engine with the production defaults), without Kafka, the
// collector or wall-clock pacing. The quality harness uses it where the
// real pipeline would be too slow on a small machine: weeks of benign
// subnet-days for the false-incident rate.
package inproc

import (
	"time"

	"github.com/packetworks/flowsentry/benchmarks/quality/flows"
	"github.com/packetworks/flowsentry/benchmarks/quality/score"
	"github.com/packetworks/flowsentry/detector/baseline"
	"github.com/packetworks/flowsentry/detector/classify"
	"github.com/packetworks/flowsentry/detector/engine"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/packetworks/flowsentry/schemas/topics"
)

// Engine is one detector engine and the incidents it raised.
type Engine struct {
	eng   *engine.Engine
	parts int
	clock time.Time
	open  map[string]int // anomaly id -> index in incidents
	incs  []score.Incident
	Flows uint64
}

// New returns an engine with the production defaults except warmup
// windows (baseline.warmup_windows).
func New(warmup int) (*Engine, error) {
	e := &Engine{parts: topics.All()[0].Partitions, open: map[string]int{}}
	bcfg := baseline.DefaultConfig()
	bcfg.WarmupWindows = warmup
	eng, err := engine.New(engine.DefaultConfig(), bcfg, classify.DefaultConfig(), e, nil, "inproc", nil)
	if err != nil {
		return nil, err
	}
	// Partition idleness is wall clock in the worker; here the event
	// time stands in for it (every partition reads continuously).
	eng.SetWallClock(func() time.Time { return e.clock })
	e.eng = eng
	return e, nil
}

// Flow folds one normalised flow into the partition the collector would
// have produced it to (murmur2 of the subnet key).
func (e *Engine) Flow(f *pb.Flow) {
	if f.GetSubnet() == "" {
		return
	}
	e.eng.Fold(int32(topics.Partition([]byte(f.GetSubnet()), e.parts)), f)
	e.Flows++
}

// Advance runs the engine's window bookkeeping as a worker does after each
// batch; now is the event time reached.
func (e *Engine) Advance(now time.Time) {
	e.clock = now
	e.eng.Advance()
}

// Event is engine.Sink: START and END become incidents.
func (e *Engine) Event(ev *pb.AnomalyEvent) {
	switch ev.GetKind() {
	case pb.AnomalyEvent_START:
		e.open[ev.GetId()] = len(e.incs)
		e.incs = append(e.incs, Incident(ev))
	case pb.AnomalyEvent_UPDATE:
		if i, ok := e.open[ev.GetId()]; ok {
			Reclassify(&e.incs[i], ev)
		}
	case pb.AnomalyEvent_END:
		if i, ok := e.open[ev.GetId()]; ok {
			e.incs[i].End = time.Unix(0, int64(ev.GetEndedAtNs())).UTC()
			delete(e.open, ev.GetId())
		}
	}
}

// Snapshot is engine.Sink (snapshots are not scored).
func (e *Engine) Snapshot(*pb.BaselineSnapshot) {}

// Incidents returns what the engine raised so far.
func (e *Engine) Incidents() []score.Incident { return append([]score.Incident(nil), e.incs...) }

// Dropped returns the engine's drop count for reason (late, ...).
func (e *Engine) Dropped(reason string) uint64 { return e.eng.Dropped(reason) }

// Incident is the incident a START event opens.
func Incident(ev *pb.AnomalyEvent) score.Incident {
	return score.Incident{ID: ev.GetId(), Class: ev.GetClass(), Subnet: ev.GetSubnet(), Direction: flows.Dir(ev.GetDirection()),
		Start: time.Unix(0, int64(ev.GetStartedAtNs())).UTC(), Opened: time.Unix(0, int64(ev.GetUpdatedAtNs())).UTC(),
		Metric: ev.GetMetric(), Observed: ev.GetObserved(), Expected: ev.GetExpected(), Score: ev.GetScore()}
}

// Reclassify applies an UPDATE's class to the incident (a refinement of a
// young volumetric anomaly), keeping the START's class in OpenedAs.
func Reclassify(in *score.Incident, ev *pb.AnomalyEvent) {
	if c := ev.GetClass(); c != "" && c != in.Class {
		if in.OpenedAs == "" {
			in.OpenedAs = in.Class
		}
		in.Class = c
	}
}

var _ engine.Sink = (*Engine)(nil)
