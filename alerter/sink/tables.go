package sink

import (
	"context"
	"fmt"
	"time"

	"github.com/packetworks/flowsentry/alerter/sink/rows"
	"github.com/packetworks/flowsentry/alerter/sink/store"
	"github.com/packetworks/flowsentry/schemas/dedup"
	"github.com/packetworks/flowsentry/schemas/pb"
	"google.golang.org/protobuf/proto"
)

// FlowStore is the ClickHouse side of the flows table (store.Store, or a
// fake in unit tests).
type FlowStore interface {
	InsertFlows(ctx context.Context, rs []rows.Flow) error
	HeldFlows(ctx context.Context, ranges []store.Range, batches []store.Batch, tmin, tmax time.Time, keys []store.Key) ([]store.HeldRow, error)
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
		r.ProducerID, r.Sequence = fb.ProducerId, fb.Sequence
		if err != nil {
			// The dead letter is a FlowBatch of the one flow, so a tool that
			// replays dead letters reads them like the flows topic.
			v, _ := proto.Marshal(&pb.FlowBatch{Flows: []*pb.Flow{f}, Collector: fb.Collector,
				ProducerId: fb.ProducerId, Sequence: fb.Sequence})
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

// Origin is the message's batch identity, read without decoding its flows
// (zero for a batch without one, or for a message that is not a
// FlowBatch, which Decode turns into a dead letter).
func (FlowsTable) Origin(m Message) dedup.Origin {
	o, _ := dedup.Peek(m.Value)
	return o
}

// Held asks ClickHouse, in one query, which rows of rs it holds, bounded by
// the rows' own offset ranges, batch identities, time range and (customer,
// subnet) keys. A row is held only if the content matches too: at its own
// (partition, offset, index) it is a replay (HeldHere); with its own
// (producer_id, sequence, index) at another offset it is a re-sent copy an
// earlier run stored (HeldResent). reused counts positions held with other
// content (a recreated topic).
func (t FlowsTable) Held(ctx context.Context, rs []rows.Flow) ([]Hold, int, error) {
	if len(rs) == 0 {
		return nil, 0, nil
	}
	ranges := map[uint16]*store.Range{}
	batches := map[store.Batch]struct{}{}
	for i := range rs {
		r := &rs[i]
		g := ranges[r.KafkaPartition]
		if g == nil {
			g = &store.Range{Partition: r.KafkaPartition, Lo: r.KafkaOffset, Hi: r.KafkaOffset}
			ranges[r.KafkaPartition] = g
		}
		g.Lo, g.Hi = min(g.Lo, r.KafkaOffset), max(g.Hi, r.KafkaOffset)
		if r.ProducerID != 0 {
			batches[store.Batch{Producer: r.ProducerID, Sequence: r.Sequence}] = struct{}{}
		}
	}
	rl := make([]store.Range, 0, len(ranges))
	for _, g := range ranges {
		rl = append(rl, *g)
	}
	bl := make([]store.Batch, 0, len(batches))
	for b := range batches {
		bl = append(bl, b)
	}
	tmin, tmax, kl := bounds(rs)
	found, err := t.Store.HeldFlows(ctx, rl, bl, tmin, tmax, kl)
	if err != nil {
		return nil, 0, err
	}
	type copyKey struct {
		store.Batch
		Index uint32
	}
	atPos := map[store.Record][]store.Fingerprint{}
	byCopy := map[copyKey][]store.HeldRow{}
	for _, h := range found {
		atPos[h.Record] = append(atPos[h.Record], h.Fingerprint)
		if h.Producer != 0 {
			k := copyKey{h.Batch, h.Index}
			byCopy[k] = append(byCopy[k], h)
		}
	}
	out := make([]Hold, len(rs))
	reused := 0
	for i := range rs {
		r := &rs[i]
		want := store.FingerprintOf(r)
		pos := store.Record{Partition: r.KafkaPartition, Offset: r.KafkaOffset, Index: r.KafkaIndex}
		fps, ok := atPos[pos]
		for _, f := range fps {
			if f == want {
				out[i] = HeldHere
			}
		}
		if out[i] == NotHeld && r.ProducerID != 0 {
			for _, h := range byCopy[copyKey{store.Batch{Producer: r.ProducerID, Sequence: r.Sequence}, r.KafkaIndex}] {
				if h.Record != pos && h.Fingerprint == want {
					out[i] = HeldResent
				}
			}
		}
		if ok && out[i] == NotHeld {
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
