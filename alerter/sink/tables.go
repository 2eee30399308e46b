package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/packetworks/flowsentry/alerter/sink/rows"
	"github.com/packetworks/flowsentry/alerter/sink/store"
	"github.com/packetworks/flowsentry/schemas/pb"
	"google.golang.org/protobuf/proto"
)

// FlowStore is the ClickHouse side of the flows table (store.Store, or a
// fake in unit tests).
type FlowStore interface {
	InsertFlows(ctx context.Context, rs []rows.Flow) error
	HeldFlows(ctx context.Context, ranges []store.Range, tmin, tmax time.Time, keys []store.Key) (map[store.Record][]store.Fingerprint, error)
	RepairRollups(ctx context.Context, tmin, tmax time.Time, keys []store.Key) ([]store.RepairReport, error)
}

// FlowsTable writes the flows topic (pb.FlowBatch per message) to
// flowsentry.flows, one row per flow.
type FlowsTable struct{ Store FlowStore }

func (FlowsTable) Name() string { return "flows" }

func (FlowsTable) Decode(m Message) ([]rows.Flow, []DeadLetter) {
	var fb pb.FlowBatch
	if err := proto.Unmarshal(m.Value, &fb); err != nil {
		return nil, []DeadLetter{{Source: m, Index: -1, Value: m.Value, Err: fmt.Errorf("decode FlowBatch: %w", err)}}
	}
	out := make([]rows.Flow, 0, len(fb.Flows))
	var dead []DeadLetter
	for i, f := range fb.Flows {
		r, err := rows.FromFlow(f, m.Partition, m.Offset, i)
		if err != nil {
			// The dead letter is a FlowBatch of the one flow, so a tool that
			// replays dead letters reads them like the flows topic.
			v, _ := proto.Marshal(&pb.FlowBatch{Flows: []*pb.Flow{f}, Collector: fb.Collector})
			dead = append(dead, DeadLetter{Source: m, Index: i, Value: v, Err: err})
			continue
		}
		out = append(out, r)
	}
	return out, dead
}

func (t FlowsTable) Insert(ctx context.Context, rs []rows.Flow) error {
	return t.Store.InsertFlows(ctx, rs)
}

// Held asks ClickHouse, in one query, which (partition, offset, index) of
// rs it holds, bounded by the rows' own offset ranges, time range and
// (customer, subnet) keys. A row is held only if the content matches too;
// reused counts positions held with other content (a recreated topic).
func (t FlowsTable) Held(ctx context.Context, rs []rows.Flow) ([]bool, int, error) {
	if len(rs) == 0 {
		return nil, 0, nil
	}
	ranges := map[uint16]*store.Range{}
	for i := range rs {
		r := &rs[i]
		g := ranges[r.KafkaPartition]
		if g == nil {
			g = &store.Range{Partition: r.KafkaPartition, Lo: r.KafkaOffset, Hi: r.KafkaOffset}
			ranges[r.KafkaPartition] = g
		}
		g.Lo, g.Hi = min(g.Lo, r.KafkaOffset), max(g.Hi, r.KafkaOffset)
	}
	rl := make([]store.Range, 0, len(ranges))
	for _, g := range ranges {
		rl = append(rl, *g)
	}
	tmin, tmax, kl := bounds(rs)
	held, err := t.Store.HeldFlows(ctx, rl, tmin, tmax, kl)
	if err != nil {
		return nil, 0, err
	}
	out := make([]bool, len(rs))
	reused := 0
	for i := range rs {
		fps, ok := held[store.Record{Partition: rs[i].KafkaPartition, Offset: rs[i].KafkaOffset, Index: rs[i].KafkaIndex}]
		if !ok {
			continue
		}
		want := store.FingerprintOf(&rs[i])
		for _, f := range fps {
			out[i] = out[i] || f == want
		}
		if !out[i] {
			reused++
		}
	}
	return out, reused, nil
}

// Repair makes the rollups whole for the cells of rows found held.
func (t FlowsTable) Repair(ctx context.Context, held []rows.Flow) ([]store.RepairReport, error) {
	if len(held) == 0 {
		return nil, nil
	}
	tmin, tmax, keys := bounds(held)
	return t.Store.RepairRollups(ctx, tmin, tmax, keys)
}

// bounds is the time range and the (customer, subnet) keys of rs (not empty).
func bounds(rs []rows.Flow) (tmin, tmax time.Time, keys []store.Key) {
	seen := map[store.Key]struct{}{}
	tmin, tmax = rs[0].TimeReceived, rs[0].TimeReceived
	for i := range rs {
		r := &rs[i]
		k := store.Key{Customer: r.Customer, Subnet: r.Subnet}
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			keys = append(keys, k)
		}
		if r.TimeReceived.Before(tmin) {
			tmin = r.TimeReceived
		}
		if r.TimeReceived.After(tmax) {
			tmax = r.TimeReceived
		}
	}
	return tmin, tmax, keys
}

// AlertsTable writes the anomalies topic (pb.AnomalyEvent) to
// flowsentry.alerts. Re-delivered events fold in the ReplacingMergeTree.
type AlertsTable struct {
	Insertf func(ctx context.Context, as []rows.Alert) error
}

func (AlertsTable) Name() string { return "alerts" }

func (AlertsTable) Decode(m Message) ([]rows.Alert, []DeadLetter) {
	var e pb.AnomalyEvent
	if err := proto.Unmarshal(m.Value, &e); err != nil {
		return nil, []DeadLetter{{Source: m, Index: -1, Value: m.Value, Err: fmt.Errorf("decode AnomalyEvent: %w", err)}}
	}
	a, err := rows.FromAnomaly(&e)
	if err != nil {
		return nil, []DeadLetter{{Source: m, Index: -1, Value: m.Value, Err: err}}
	}
	return []rows.Alert{a}, nil
}

func (t AlertsTable) Insert(ctx context.Context, as []rows.Alert) error { return t.Insertf(ctx, as) }

// BaselinesTable writes the baselines topic (pb.BaselineSnapshot, one row
// per metric) to flowsentry.baselines.
type BaselinesTable struct {
	Insertf func(ctx context.Context, bs []rows.Baseline) error
}

func (BaselinesTable) Name() string { return "baselines" }

func (BaselinesTable) Decode(m Message) ([]rows.Baseline, []DeadLetter) {
	var s pb.BaselineSnapshot
	if err := proto.Unmarshal(m.Value, &s); err != nil {
		return nil, []DeadLetter{{Source: m, Index: -1, Value: m.Value, Err: fmt.Errorf("decode BaselineSnapshot: %w", err)}}
	}
	bs, err := rows.FromBaseline(&s)
	if err != nil {
		return nil, []DeadLetter{{Source: m, Index: -1, Value: m.Value, Err: err}}
	}
	return bs, nil
}

func (t BaselinesTable) Insert(ctx context.Context, bs []rows.Baseline) error {
	return t.Insertf(ctx, bs)
}

type (
	rowsFlow     = rows.Flow
	rowsAlert    = rows.Alert
	rowsBaseline = rows.Baseline
)
