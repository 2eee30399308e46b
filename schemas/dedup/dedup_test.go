package dedup

import (
	"strings"
	"testing"

	"github.com/packetworks/flowsentry/schemas/pb"
	"google.golang.org/protobuf/proto"
)

// obs is one Observe call and the verdict it must give.
type obs struct {
	part     int
	producer uint64
	seq      uint64
	want     Verdict
}

// seqs observes producer p's sequences from..to on partition 0, all New.
func seqs(p, from, to uint64) []obs {
	var out []obs
	for s := from; s <= to; s++ {
		out = append(out, obs{0, p, s, New})
	}
	return out
}

func cat(parts ...[]obs) []obs {
	var out []obs
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestWindow(t *testing.T) {
	const a, b, c = 0xa1, 0xb2, 0xc3
	for _, tc := range []struct {
		name string
		cfg  Config
		obs  []obs
	}{
		{"in order, then re-sent copies", Config{Window: 64, Producers: 4}, cat(seqs(a, 1, 50),
			[]obs{{0, a, 50, Duplicate}, {0, a, 1, Duplicate}, {0, a, 25, Duplicate}, {0, a, 51, New}, {0, a, 51, Duplicate}})},
		{"out of order: concurrent senders", Config{Window: 64, Producers: 4}, []obs{
			{0, a, 5, New}, {0, a, 3, New}, {0, a, 9, New}, {0, a, 4, New}, {0, a, 1, New},
			{0, a, 3, Duplicate}, {0, a, 2, New}, {0, a, 9, Duplicate}, {0, a, 5, Duplicate}, {0, a, 8, New}}},
		{"a retried batch lands after later ones, within the window", Config{Window: 64, Producers: 4}, cat(
			seqs(a, 1, 10), seqs(a, 12, 70), []obs{{0, a, 11, New}, {0, a, 11, Duplicate}, {0, a, 12, Duplicate}})},
		{"eviction bound: below the last 64 sequences is too old, never dropped", Config{Window: 64, Producers: 4}, cat(
			seqs(a, 1, 179), seqs(a, 181, 200),
			[]obs{
				{0, a, 135, TooOld},    // evicted (the window holds 136..179, 181..200): cannot tell
				{0, a, 1, TooOld},      // long gone
				{0, a, 136, Duplicate}, // the lowest still held
				{0, a, 180, New},       // late original, inside the window: pushes 136 out
				{0, a, 136, TooOld},
				{0, a, 180, Duplicate},
				{0, a, 200, Duplicate},
				{0, a, 201, New},
			})},
		{"collector restart: a new producer id starts over at 1", Config{Window: 64, Producers: 4}, cat(
			seqs(a, 1, 10), seqs(b, 1, 10),
			[]obs{{0, a, 10, Duplicate}, {0, b, 10, Duplicate}, {0, b, 11, New}})},
		{"partitions are separate", Config{Window: 64, Producers: 4}, []obs{
			{0, a, 7, New}, {1, a, 7, New}, {1, a, 7, Duplicate}, {0, a, 7, Duplicate}}},
		{"no producer id (older collector): never deduplicated", Config{Window: 64, Producers: 4}, []obs{
			{0, 0, 0, Unidentified}, {0, 0, 0, Unidentified}, {0, 0, 5, Unidentified}}},
		{"producer bound: the idlest producer is forgotten", Config{Window: 64, Producers: 2}, []obs{
			{0, a, 1, New}, {0, b, 1, New}, {0, a, 2, New}, // b is now the idlest
			{0, c, 1, New}, // forgets b
			{0, a, 1, Duplicate}, {0, c, 1, Duplicate},
			{0, b, 1, New}, // b forgotten: its copy passes (a duplicate, the price of the bound)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWindow(tc.cfg)
			for i, o := range tc.obs {
				if got := w.Observe(o.part, Origin{Producer: o.producer, Sequence: o.seq}); got != o.want {
					t.Fatalf("step %d: partition %d producer %x sequence %d: %v, want %v", i, o.part, o.producer, o.seq, got, o.want)
				}
			}
			for p, ps := range w.parts {
				if len(ps) > tc.cfg.Producers {
					t.Errorf("partition %d remembers %d producers, bound %d", p, len(ps), tc.cfg.Producers)
				}
				for id, s := range ps {
					if len(s.seqs) > tc.cfg.Window {
						t.Errorf("producer %x holds %d sequences, bound %d", id, len(s.seqs), tc.cfg.Window)
					}
				}
			}
		})
	}
}

// TestWindowMemoryBound: a long stream keeps at most Window sequences per
// producer, and the backing array does not grow with the stream.
func TestWindowMemoryBound(t *testing.T) {
	w := NewWindow(Config{Window: 1000, Producers: 1})
	for s := uint64(1); s <= 200000; s++ {
		if v := w.Observe(3, Origin{Producer: 9, Sequence: s}); v != New {
			t.Fatalf("sequence %d: %v", s, v)
		}
	}
	s := w.parts[3][9]
	if len(s.seqs) != 1000 || cap(s.seqs) > 4000 {
		t.Fatalf("len %d cap %d after 200000 sequences, window 1000", len(s.seqs), cap(s.seqs))
	}
	if s.seqs[0] != 199001 || s.floor != 199000 {
		t.Fatalf("holds %d.. with floor %d", s.seqs[0], s.floor)
	}
}

func TestForget(t *testing.T) {
	w := NewWindow(Config{})
	w.Observe(0, Origin{Producer: 1, Sequence: 1})
	w.Observe(1, Origin{Producer: 1, Sequence: 1})
	w.Forget(0)
	if w.Producers(0) != 0 || w.Producers(1) != 1 {
		t.Fatalf("producers after Forget(0): %d, %d", w.Producers(0), w.Producers(1))
	}
	if v := w.Observe(0, Origin{Producer: 1, Sequence: 1}); v != New {
		t.Fatalf("after Forget: %v", v)
	}
}

func TestPeek(t *testing.T) {
	flows := []*pb.Flow{{Bytes: 10, Subnet: "203.0.113.0/24", SrcAddr: []byte{1, 2, 3, 4}}, {Packets: 3}}
	for _, tc := range []struct {
		name  string
		batch *pb.FlowBatch
		want  Origin
	}{
		{"identified", &pb.FlowBatch{Flows: flows, Collector: "c1", ProducerId: 0xfedcba9876543210, Sequence: 1 << 40},
			Origin{Producer: 0xfedcba9876543210, Sequence: 1 << 40}},
		{"older collector", &pb.FlowBatch{Flows: flows, Collector: "c1"}, Origin{}},
		{"empty", &pb.FlowBatch{ProducerId: 1, Sequence: 1}, Origin{Producer: 1, Sequence: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := proto.Marshal(tc.batch)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Peek(v)
			if err != nil || got != tc.want {
				t.Fatalf("Peek = %+v, %v; want %+v", got, err, tc.want)
			}
			if len(v) > 2 {
				if _, err := Peek(v[:len(v)-1]); err == nil {
					t.Fatal("truncated batch accepted")
				}
			}
		})
	}
	if _, err := Peek([]byte{0xff, 0xff, 0xff}); err == nil {
		t.Fatal("garbage accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate("x"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Window: 10, Producers: 64}, "consumer.dedup.window"},
		{Config{Window: 1 << 23, Producers: 64}, "consumer.dedup.window"},
		{Config{Window: 1024, Producers: 0}, "consumer.dedup.producers"},
	} {
		if err := tc.cfg.Validate("consumer.dedup"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v does not name %s", tc.cfg, err, tc.want)
		}
	}
}
