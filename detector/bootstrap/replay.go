// Package bootstrap learns baselines from flow history instead of live
// traffic (`detector bootstrap --from-clickhouse --days N`): it replays the
// flows ClickHouse kept through the same engine the workers run, with the
// same configuration, windows, learning rules and per-partition clocks, and
// writes each target's learned state to the detector-state topic as the
// checkpoint a worker restores when it is assigned the partition. A new
// deployment then alerts from its first minute instead of after warm-up.
package bootstrap

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/packetworks/flowsentry/detector/baseline"
	"github.com/packetworks/flowsentry/detector/checkpoint"
	"github.com/packetworks/flowsentry/detector/classify"
	"github.com/packetworks/flowsentry/detector/engine"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/packetworks/flowsentry/schemas/topics"
)

// Source streams flow history.
type Source interface {
	// Scan calls fn with the flows received in [from, to), one Kafka
	// message (batch) at a time, in the order a worker read them: by
	// receive time, then partition and offset. recv is the batch's receive
	// time (ns), partition the flows partition it was read from. fn must
	// not keep the batch or its flows.
	Scan(ctx context.Context, from, to time.Time, fn func(recv int64, partition int32, batch []*pb.Flow) error) error
}

// Replay folds history through an engine as the worker did when the flows
// arrived: in arrival order, each message on the partition it was read
// from (each partition keeps its own event-time clock), the engine
// advancing after each message, and the wall clock that decides partition
// idleness at the receive time. Flows the worker dropped as late are
// dropped again, by the engine's own rule.
type Replay struct {
	Engine   engine.Config
	Baseline baseline.Config
	Classify classify.Config
	Limits   engine.Limits // per-customer floors and ceilings; nil for none
	// Partitions of the flows topic now: where each target's checkpoint
	// goes (history may have been read with another partition count).
	Partitions int
	Log        *slog.Logger
}

// Result is what a replay learned.
type Result struct {
	// Records has one checkpoint per target that learned or changed, with
	// hysteresis and open anomalies cleared (see Run).
	Records []checkpoint.Record
	Summary Summary
}

// Summary describes a replay (and a bootstrap) for the operator.
type Summary struct {
	From, To     time.Time // history asked for: [From, To)
	First, Last  time.Time // receive time of the first and last flow read
	Flows        uint64    // flows read
	Late         uint64    // arrived after their window was final: dropped, as the worker did
	Dropped      map[string]uint64
	Targets      int           // targets with learned state
	Warm         int           // of those, past warm-up (may alert at once)
	Windows      [3]uint32     // windows learned per target: min, median, max
	PerPartition map[int32]int // targets per flows partition
	Events       map[string]int
	OpenAtCut    int // anomalies still open when history ended (cleared)
	Snapshots    int
	Elapsed      time.Duration
	// Written is set by Job: records written and partitions whose group
	// offset was committed (with the offset).
	Written   int
	Committed map[int]int64
}

// history is the engine's sink during a replay: events are anomalies of
// the past, never published; they are counted and logged.
type history struct {
	log       *slog.Logger
	events    map[string]int
	snapshots int
}

func (h *history) Event(ev *pb.AnomalyEvent) {
	h.events[ev.GetClass()+" "+ev.GetKind().String()]++
	if ev.GetKind() == pb.AnomalyEvent_START {
		h.log.Info("anomaly in history (not published)", "subnet", ev.GetSubnet(), "direction", ev.GetDirection().String(),
			"class", ev.GetClass(), "started_at", time.Unix(0, int64(ev.GetStartedAtNs())).UTC())
	}
}

func (h *history) Snapshot(*pb.BaselineSnapshot) { h.snapshots++ }

// dropReasons are the engine's reasons for skipping a flow.
var dropReasons = []string{"no_subnet", "no_direction", "no_time", "allowlisted", "late"}

// Run replays the flows of [from, to) from src.
func (r Replay) Run(ctx context.Context, src Source, from, to time.Time) (*Result, error) {
	if r.Partitions < 1 {
		return nil, fmt.Errorf("bootstrap: %d flows partitions", r.Partitions)
	}
	log := r.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &history{log: log, events: map[string]int{}}
	eng, err := engine.New(r.Engine, r.Baseline, r.Classify, h, r.Limits, "bootstrap", nil)
	if err != nil {
		return nil, err
	}
	var now int64
	eng.SetWallClock(func() time.Time { return time.Unix(0, now) })
	s := Summary{From: from, To: to, Dropped: map[string]uint64{}}
	t0, lastLog := time.Now(), time.Now()
	fold := func(recv int64, p int32, batch []*pb.Flow) error {
		if s.Flows == 0 {
			s.First = time.Unix(0, recv).UTC()
		}
		s.Last = time.Unix(0, recv).UTC()
		now = recv
		for _, f := range batch {
			eng.Fold(p, f)
		}
		eng.Advance()
		n := s.Flows
		s.Flows += uint64(len(batch))
		if n>>16 != s.Flows>>16 {
			if err := ctx.Err(); err != nil {
				return err
			}
			if el := time.Since(t0); time.Since(lastLog) >= 10*time.Second {
				lastLog = time.Now()
				log.Info("bootstrap progress", "received", s.Last, "done_pct", int(100*s.Last.Sub(from)/to.Sub(from)),
					"flows", s.Flows, "targets", eng.Stats().Targets, "flows_per_s", int(float64(s.Flows)/el.Seconds()))
			}
		}
		return nil
	}
	if err := src.Scan(ctx, from, to, fold); err != nil {
		return nil, fmt.Errorf("bootstrap: reading history: %w", err)
	}
	log.Info("bootstrap history read", "flows", s.Flows, "targets", eng.Stats().Targets, "took", time.Since(t0).String())
	for _, reason := range dropReasons {
		if n := eng.Dropped(reason); n > 0 {
			s.Dropped[reason] = n
		}
	}
	s.Late = s.Dropped["late"]
	delete(s.Dropped, "late")
	recs, err := eng.Checkpoint(nil)
	if err != nil {
		return nil, err
	}
	res := &Result{}
	var learned []uint32
	s.PerPartition = map[int32]int{}
	for _, rec := range recs {
		if rec.Value == nil {
			// Forgotten in history (silent for a day): nothing to restore,
			// and a bootstrap deletes nothing.
			continue
		}
		st, err := checkpoint.Decode(rec.Value)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: %s: %w", rec.Key, err)
		}
		subnet, _, err := checkpoint.ParseKey(rec.Key)
		if err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
		rec.Partition = int32(topics.Partition([]byte(subnet), r.Partitions))
		// Anomalies of the past were never published: a worker that
		// restored them would send UPDATE and END for incidents nobody
		// opened. An attack still going on is detected afresh, live.
		s.OpenAtCut += len(st.Track.Active())
		st.Track = classify.Tracker{}
		if rec.Value, err = checkpoint.Encode(st); err != nil {
			return nil, fmt.Errorf("bootstrap: %s: %w", rec.Key, err)
		}
		res.Records = append(res.Records, rec)
		learned = append(learned, st.Base.N)
		if eng.Model().Warm(&st.Base) {
			s.Warm++
		}
		s.PerPartition[rec.Partition]++
	}
	if len(learned) > 0 {
		slices.Sort(learned)
		s.Windows = [3]uint32{learned[0], learned[len(learned)/2], learned[len(learned)-1]}
	}
	// Stable output for operators and tests.
	slices.SortFunc(res.Records, func(a, b checkpoint.Record) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Key, b.Key))
	})
	s.Targets, s.Events, s.Snapshots, s.Elapsed = len(res.Records), h.events, h.snapshots, time.Since(t0)
	res.Summary = s
	return res, nil
}
