package worker

import (
	"io"
	"log/slog"
	"testing"

	"github.com/packetworks/flowsentry/detector/baseline"
	"github.com/packetworks/flowsentry/detector/classify"
	"github.com/packetworks/flowsentry/detector/engine"
	"github.com/packetworks/flowsentry/schemas/dedup"
	"github.com/packetworks/flowsentry/schemas/kafkaclient"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
)

// TestHandleDropsResentBatches: a copy of a batch re-sent by its producer
// (same bytes at a later offset) is not folded, is counted, and still moves
// the offset to commit; batches without an identity are always folded.
// Folded flows are counted through the engine: these flows have no subnet,
// so each Fold counts one "no_subnet" drop.
func TestHandleDropsResentBatches(t *testing.T) {
	w, err := New(DefaultConfig(), kafkaclient.Default(), slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry(),
		func(s engine.Sink) (*engine.Engine, error) {
			return engine.New(engine.DefaultConfig(), baseline.DefaultConfig(), classify.DefaultConfig(), s, nil, "t",
				engine.NewMetrics(prometheus.NewRegistry()))
		})
	if err != nil {
		t.Fatal(err)
	}
	w.flowParts = 8
	msg := func(producer, seq uint64, flows int) []byte {
		fb := &pb.FlowBatch{Collector: "c", ProducerId: producer, Sequence: seq}
		for i := 0; i < flows; i++ {
			fb.Flows = append(fb.Flows, &pb.Flow{Bytes: uint64(i + 1)})
		}
		b, err := proto.Marshal(fb)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a1, a2, a3 := msg(7, 1, 3), msg(7, 2, 4), msg(7, 3, 5)
	win := dedup.NewWindow(dedup.DefaultConfig()) // one assignment for all the steps
	for _, tc := range []struct {
		name       string
		part       int
		values     [][]byte
		wantFolded uint64
		wantDup    float64
	}{
		{"originals", 0, [][]byte{a1, a2}, 7, 0},
		{"copies of both, then a new batch", 0, [][]byte{a2, a1, a3}, 7 + 5, 2},
		{"a copy after the new batch", 0, [][]byte{a3}, 12, 3},
		{"same sequence from a restarted collector", 0, [][]byte{msg(8, 1, 2)}, 14, 3},
		{"the same batch on another partition is not a copy", 1, [][]byte{a1}, 17, 3},
		{"no identity (older collector): folded every time", 0, [][]byte{msg(0, 0, 1), msg(0, 0, 1)}, 19, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, v := range tc.values {
				off := w.next[tc.part]
				w.handle(tc.part, kafka.Message{Partition: tc.part, Offset: off, Value: v}, &pb.FlowBatch{}, win)
				if w.next[tc.part] != off+1 {
					t.Fatalf("offset to commit %d after message %d", w.next[tc.part], off)
				}
			}
			var folded uint64
			w.Engine(func(e *engine.Engine) { folded = e.Dropped("no_subnet") })
			if folded != tc.wantFolded {
				t.Errorf("%d flows folded, want %d", folded, tc.wantFolded)
			}
			if got := testutil.ToFloat64(w.m.DuplicateBatches); got != tc.wantDup {
				t.Errorf("detector_duplicate_batches_total = %v, want %v", got, tc.wantDup)
			}
		})
	}
	if got := testutil.ToFloat64(w.m.DuplicateFlows); got != 4+3+5 {
		t.Errorf("detector_duplicate_flows_total = %v, want 12", got)
	}
}
