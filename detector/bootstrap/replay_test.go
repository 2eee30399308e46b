package bootstrap

import (
	"bytes"
	"cmp"
	"context"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/detector/baseline"
	"github.com/packetworks/flowsentry/detector/checkpoint"
	"github.com/packetworks/flowsentry/detector/classify"
	"github.com/packetworks/flowsentry/detector/engine"
	"github.com/packetworks/flowsentry/detector/synth"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/packetworks/flowsentry/schemas/topics"
)

const (
	sec = int64(1e9)
	t0  = int64(1717977600) * sec // a Monday, 00:00 UTC
)

// message is one Kafka message of the flows topic: one subnet's flows
// received in one second.
type message struct {
	recv      int64 // receive second, ns
	partition int
	offset    int
	flows     []*pb.Flow
}

// flowLog builds the messages of a synthetic history.
type flowLog struct {
	parts  int
	msgs   []message
	offset map[int]int
	last   int64 // latest receive time
}

func (h *flowLog) add(recv int64, subnet string, flows []*pb.Flow) {
	if len(flows) == 0 {
		return
	}
	for _, f := range flows {
		f.TimeReceivedNs = uint64(recv)
	}
	h.last = max(h.last, recv)
	p := topics.Partition([]byte(subnet), h.parts)
	h.msgs = append(h.msgs, message{recv: recv, partition: p, offset: h.offset[p], flows: flows})
	h.offset[p]++
}

// live folds the messages as a worker reads them: in receive order, one
// batch at a time, Advance after each, the wall clock at receive time.
func live(t *testing.T, h *flowLog, ec engine.Config, bc baseline.Config, cc classify.Config) *engine.Engine {
	t.Helper()
	var now int64
	eng, err := engine.New(ec, bc, cc, &discard{}, nil, "live", nil)
	if err != nil {
		t.Fatal(err)
	}
	eng.SetWallClock(func() time.Time { return time.Unix(0, now) })
	for _, m := range h.msgs {
		now = m.recv
		for _, f := range m.flows {
			eng.Fold(int32(m.partition), f)
		}
		eng.Advance()
	}
	return eng
}

type discard struct{ events int }

func (d *discard) Event(*pb.AnomalyEvent)        { d.events++ }
func (d *discard) Snapshot(*pb.BaselineSnapshot) {}

// memSource is the flows table in memory: rows as the sink writes them
// (seconds, 16-byte addresses), returned as the ClickHouse query orders
// and batches them.
type memSource struct {
	rows []memRow
}

type memRow struct {
	row
	ki int
}

func to16(b []byte) (a [16]byte) {
	switch len(b) {
	case 4:
		copy(a[:], []byte{10: 0xff, 11: 0xff})
		copy(a[12:], b)
	case 16:
		copy(a[:], b)
	}
	return a
}

func newMemSource(h *flowLog) *memSource {
	s := &memSource{}
	for _, m := range h.msgs {
		for i, f := range m.flows {
			r := row{recv: uint32(f.TimeReceivedNs / 1e9), end: uint32(f.TimeFlowEndNs / 1e9),
				src: to16(f.SrcAddr), dst: to16(f.DstAddr), sport: uint16(f.SrcPort), dport: uint16(f.DstPort),
				proto: uint8(f.Proto), flags: uint8(f.TcpFlags), frag: uint16(f.FragmentOffset), rate: uint32(f.SamplingRate),
				bytes: f.Bytes, packets: f.Packets, customer: f.Customer, subnet: f.Subnet, dir: int8(f.Direction),
				kp: uint16(m.partition), ko: uint64(m.offset)}
			s.rows = append(s.rows, memRow{r, i})
		}
	}
	// ORDER BY time_received, kafka_partition, kafka_offset, kafka_index
	slices.SortStableFunc(s.rows, func(a, b memRow) int {
		return cmp.Or(cmp.Compare(a.recv, b.recv), cmp.Compare(a.kp, b.kp), cmp.Compare(a.ko, b.ko), cmp.Compare(a.ki, b.ki))
	})
	return s
}

func (s *memSource) Scan(ctx context.Context, from, to time.Time, fn func(int64, int32, []*pb.Flow) error) error {
	bt := &batcher{fn: fn}
	for i := range s.rows {
		r := &s.rows[i]
		if int64(r.recv) < from.Unix() || int64(r.recv) >= to.Unix() || r.subnet == "" || r.dir == 0 {
			continue
		}
		if err := bt.add(&r.row); err != nil {
			return err
		}
	}
	return bt.flush()
}

type subnetPlan struct {
	prefix string
	// flows returns the flows of event second t (nil: silent).
	flows func(g *synth.Gen, t int64) []*pb.Flow
}

func normal(g *synth.Gen, t int64) []*pb.Flow { return g.Normal(t, 10000, 500) }

// attackFrom adds a UDP flood from second `from` (relative) until `to`.
func attackFrom(from, to int64) func(g *synth.Gen, t int64) []*pb.Flow {
	return func(g *synth.Gen, t int64) []*pb.Flow {
		fl := g.Normal(t, 10000, 500)
		if t >= t0+from*sec && t < t0+to*sec {
			fl = append(fl, g.Attack(synth.AttackUDP, t, 100000)...)
		}
		return fl
	}
}

// silentAfter stops the subnet's traffic at second s (relative).
func silentAfter(s int64) func(g *synth.Gen, t int64) []*pb.Flow {
	return func(g *synth.Gen, t int64) []*pb.Flow {
		if t >= t0+s*sec {
			return nil
		}
		return g.Normal(t, 10000, 500)
	}
}

// The engine's state after a bootstrap equals its state after reading the
// same flows live: same baselines for the same targets on the same
// partitions, the same late flows skipped, the same anomalies seen; only
// the hysteresis and open anomalies are cleared.
func TestReplayEqualsLive(t *testing.T) {
	cases := []struct {
		name    string
		parts   int
		seconds int64
		subnets []subnetPlan
		delayed int  // flows exported 60 s late every 30 s (live drops them)
		apart   bool // every subnet on its own partition (a silent one's partition goes idle)
		// compress > 0: the history is sent after the fact, compress
		// seconds of event time per second (as the demo's warm-up does).
		compress int64
		events   bool
		open     bool
	}{
		{name: "two subnets v4 v6", parts: 4, seconds: 1200, apart: true,
			subnets: []subnetPlan{{"100.127.1.0/24", normal}, {"2001:db8:72::/48", normal}}},
		{name: "shared partitions", parts: 2, seconds: 900,
			subnets: []subnetPlan{{"100.127.2.0/24", normal}, {"100.127.3.0/24", normal}, {"100.127.4.0/24", normal},
				{"100.127.5.0/24", normal}, {"100.127.6.0/24", normal}}},
		{name: "attack in history", parts: 3, seconds: 1500, events: true,
			subnets: []subnetPlan{{"100.127.7.0/24", attackFrom(600, 900)}, {"100.127.8.0/24", normal}}},
		{name: "attack open at the cut", parts: 3, seconds: 900, events: true, open: true,
			subnets: []subnetPlan{{"100.127.9.0/24", attackFrom(700, 900)}}},
		{name: "time-compressed replay", parts: 2, seconds: 1200, compress: 20, events: true,
			subnets: []subnetPlan{{"100.127.13.0/24", attackFrom(900, 1000)}, {"100.127.14.0/24", normal}}},
		{name: "silent subnet and late exports", parts: 2, seconds: 1200, delayed: 20, events: true, open: true, apart: true,
			subnets: []subnetPlan{{"100.127.10.0/24", normal}, {"100.127.12.0/24", silentAfter(800)}}},
	}
	ec, bc, cc := engine.DefaultConfig(), baseline.DefaultConfig(), classify.DefaultConfig()
	bc.WarmupWindows = 30
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &flowLog{parts: tc.parts, offset: map[int]int{}}
			gens := make([]*synth.Gen, len(tc.subnets))
			for j, sp := range tc.subnets {
				gens[j] = synth.New(sp.prefix, "cust"+string(rune('a'+j)), uint64(100*i+j))
			}
			if tc.apart {
				seen := map[int]bool{}
				for _, g := range gens {
					seen[topics.Partition([]byte(g.Subnet.String()), tc.parts)] = true
				}
				if len(seen) != len(gens) {
					t.Fatalf("subnets share partitions; the case needs them apart")
				}
			}
			late := 0
			for tt := t0; tt < t0+tc.seconds*sec; tt += sec {
				for j, sp := range tc.subnets {
					// synth flows of second tt are received in second tt+1.
					recv := tt + sec
					if tc.compress > 0 {
						recv = t0 + tc.seconds*sec + (tt-t0)/tc.compress/sec*sec
					}
					h.add(recv, gens[j].Subnet.String(), sp.flows(gens[j], tt))
				}
				if tc.delayed > 0 && (tt-t0)%(30*sec) == 0 && tt >= t0+120*sec {
					fl := gens[0].Normal(tt-60*sec, 10000, 500)
					fl = fl[:min(tc.delayed, len(fl))]
					late += len(fl)
					h.add(tt+sec, gens[0].Subnet.String(), fl)
				}
			}
			want := live(t, h, ec, bc, cc)
			res, err := Replay{Engine: ec, Baseline: bc, Classify: cc, Partitions: tc.parts}.Run(
				context.Background(), newMemSource(h), time.Unix(0, t0), time.Unix(0, h.last+sec))
			if err != nil {
				t.Fatal(err)
			}
			wantRecs, err := want.Checkpoint(nil)
			if err != nil {
				t.Fatal(err)
			}
			wantRecs = slices.DeleteFunc(wantRecs, func(r checkpoint.Record) bool { return r.Value == nil })
			if len(res.Records) != len(wantRecs) || len(wantRecs) < len(tc.subnets) {
				t.Fatalf("%d records, live engine has %d (subnets %d)", len(res.Records), len(wantRecs), len(tc.subnets))
			}
			open := 0
			for _, w := range wantRecs {
				k := slices.IndexFunc(res.Records, func(r checkpoint.Record) bool { return r.Key == w.Key })
				if k < 0 {
					t.Fatalf("target %s missing from the bootstrap", w.Key)
				}
				got := res.Records[k]
				gs, err := checkpoint.Decode(got.Value)
				if err != nil {
					t.Fatal(err)
				}
				ws, err := checkpoint.Decode(w.Value)
				if err != nil {
					t.Fatal(err)
				}
				if got.Partition != w.Partition || gs.Customer != ws.Customer {
					t.Errorf("%s: partition %d customer %s, live %d %s", w.Key, got.Partition, gs.Customer, w.Partition, ws.Customer)
				}
				if !reflect.DeepEqual(gs.Base, ws.Base) {
					t.Errorf("%s: baseline differs: %d windows learned, live %d; pps level %v, live %v", w.Key,
						gs.Base.N, ws.Base.N, gs.Base.Global, ws.Base.Global)
				}
				if gs.Base.N < 30 {
					t.Errorf("%s: only %d windows learned", w.Key, gs.Base.N)
				}
				if !reflect.DeepEqual(gs.Track, classify.Tracker{}) {
					t.Errorf("%s: hysteresis not cleared: %+v", w.Key, gs.Track)
				}
				open += len(ws.Track.Active())
			}
			s := res.Summary
			if s.Late != uint64(late) || want.Dropped("late") != uint64(late) {
				t.Errorf("late flows: bootstrap skipped %d, live dropped %d, injected %d", s.Late, want.Dropped("late"), late)
			}
			if s.OpenAtCut != open || (open > 0) != tc.open {
				t.Errorf("open at cut %d, live %d, want open %v", s.OpenAtCut, open, tc.open)
			}
			events := 0
			for _, n := range s.Events {
				events += n
			}
			if (events > 0) != tc.events {
				t.Errorf("events in history %v, want some: %v", s.Events, tc.events)
			}
			if s.Targets != len(wantRecs) || s.Warm != len(wantRecs) || s.Flows == 0 {
				t.Errorf("summary %+v", s)
			}
			t.Logf("%d flows, %d targets, windows %v, events %v, late %d", s.Flows, s.Targets, s.Windows, s.Events, s.Late)
		})
	}
}

func TestAddressRoundTrip(t *testing.T) {
	for _, a := range []string{"192.0.2.7", "2001:db8::1", "0.0.0.0", "::"} {
		b := netip.MustParseAddr(a).AsSlice()
		a16 := to16(b)
		got := address(nil, &a16)
		want := b
		if a == "::" {
			want = nil // all zeros is how the sink stores an absent address
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %v, want %v", a, got, want)
		}
	}
	var zero [16]byte
	if got := address(nil, &zero); len(got) != 0 {
		t.Errorf("absent address: %v", got)
	}
}

func TestQueryBoundsAndQuoting(t *testing.T) {
	c := &ClickHouse{Database: "flowsentry", Customers: []string{"acme", `o'hara\`}}
	for _, q := range []string{c.query(1000, 1600), c.countQuery(1000, 1600)} {
		for _, want := range []string{
			"time_received >= toDateTime(1000) AND time_received < toDateTime(1600)",
			`customer IN ('acme', 'o\'hara\\')`, // escaped, never trusted
		} {
			if !strings.Contains(q, want) {
				t.Errorf("query lacks %q:\n%s", want, q)
			}
		}
	}
	if q := c.query(1000, 1600); !strings.HasSuffix(q, "ORDER BY time_received, kafka_partition, kafka_offset, kafka_index") {
		t.Errorf("query: %s", q)
	}
}

func TestPlanSpans(t *testing.T) {
	const h = 3600
	cases := []struct {
		name     string
		perHour  map[int64]uint64
		from, to int64
		per      int
		want     []span
	}{
		{"no data", map[int64]uint64{}, 10 * h, 20 * h, 100, nil},
		{"hours without rows skipped", map[int64]uint64{12 * h: 50, 14 * h: 1}, 10 * h, 20 * h, 100,
			[]span{{12 * h, 13 * h}, {14 * h, 15 * h}}},
		{"split by rows", map[int64]uint64{10 * h: 250}, 10 * h, 11 * h, 100,
			[]span{{10 * h, 10*h + 1200}, {10*h + 1200, 10*h + 2400}, {10*h + 2400, 11 * h}}},
		{"partial hours at both ends", map[int64]uint64{10 * h: 1, 11 * h: 1}, 10*h + 600, 11*h + 60, 100,
			[]span{{10*h + 600, 11 * h}, {11 * h, 11*h + 60}}},
		{"more parts than seconds", map[int64]uint64{10 * h: 1000}, 11*h - 2, 11 * h, 1,
			[]span{{11*h - 2, 11*h - 1}, {11*h - 1, 11 * h}}},
	}
	for _, tc := range cases {
		if got := plan(tc.perHour, tc.from, tc.to, tc.per); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
