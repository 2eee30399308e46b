package engine

import (
	"slices"
	"testing"

	"github.com/packetworks/flowsentry/detector/baseline"
	"github.com/packetworks/flowsentry/detector/classify"
	"github.com/packetworks/flowsentry/detector/synth"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/prometheus/client_golang/prometheus"
)

const sec = int64(1e9)

// t0 is a Monday 00:00 UTC, so days and slots are easy to reason about.
const t0 = int64(1717977600) * sec

type sink struct {
	e      *Engine
	events []*pb.AnomalyEvent
	at     []int64 // engine max event time when each event was emitted
	snaps  []*pb.BaselineSnapshot
}

func (s *sink) Event(ev *pb.AnomalyEvent) {
	s.events = append(s.events, ev)
	s.at = append(s.at, s.e.Stats().MaxEvent)
}
func (s *sink) Snapshot(b *pb.BaselineSnapshot) { s.snaps = append(s.snaps, b) }

func (s *sink) kinds(kind pb.AnomalyEvent_Kind) []*pb.AnomalyEvent {
	var out []*pb.AnomalyEvent
	for _, ev := range s.events {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

func newEngine(t testing.TB, mod func(*Config, *baseline.Config, *classify.Config)) (*Engine, *sink) {
	t.Helper()
	cfg, bcfg, ccfg := DefaultConfig(), baseline.DefaultConfig(), classify.DefaultConfig()
	if mod != nil {
		mod(&cfg, &bcfg, &ccfg)
	}
	s := &sink{}
	e, err := New(cfg, bcfg, ccfg, s, nil, "test", NewMetrics(prometheus.NewRegistry()))
	if err != nil {
		t.Fatal(err)
	}
	s.e = e
	return e, s
}

// feed folds one second of flows in event-time order, advancing the
// watermark as a stream of small Kafka messages would.
func feed(e *Engine, flows []*pb.Flow) {
	slices.SortFunc(flows, func(a, b *pb.Flow) int { return int(int64(a.TimeFlowEndNs) - int64(b.TimeFlowEndNs)) })
	for i, f := range flows {
		e.Fold(0, f)
		if i%16 == 15 {
			e.Advance()
		}
	}
	e.Advance()
}

const (
	basePps    = 10000.0
	pktPerFlow = 250.0
	warmup     = 3600 // seconds of normal traffic before an attack
)

// warm runs an hour of normal traffic starting at t0 and returns the next second.
func warm(e *Engine, g *synth.Gen, out bool) int64 {
	t := t0
	for ; t < t0+warmup*sec; t += sec {
		feed(e, normal(g, t, out))
	}
	return t
}

func normal(g *synth.Gen, t int64, out bool) []*pb.Flow {
	if out {
		return append(g.Normal(t, basePps, pktPerFlow), g.NormalOut(t, basePps/2, pktPerFlow)...)
	}
	return g.Normal(t, basePps, pktPerFlow)
}

// Each class is raised by its attack on a warmed baseline, with the right
// direction, fingerprint and mitigation, and ends after recovery; no other
// class is raised.
func TestClassesDetected(t *testing.T) {
	cases := []struct {
		attack   string
		pps      float64
		class    string
		dir      pb.Direction
		check    func(t *testing.T, ev *pb.AnomalyEvent, g *synth.Gen)
		attackSe int64
	}{
		{attack: synth.AttackSyn, pps: 100000, class: classify.SynFlood, check: func(t *testing.T, ev *pb.AnomalyEvent, g *synth.Gen) {
			m := ev.Fingerprint.Mitigation
			if m.TcpFlags != "syn&!ack" || !slices.Equal(m.Protocols, []uint32{6}) || !slices.Contains(m.DstPorts, 80) {
				t.Errorf("mitigation %v", m)
			}
			if m.DstPrefix != g.Victim().String()+"/32" {
				t.Errorf("dst prefix %q, want the victim", m.DstPrefix)
			}
			if ev.Fingerprint.DistinctSources < 1000 {
				t.Errorf("spoofed sources: distinct %d", ev.Fingerprint.DistinctSources)
			}
		}},
		{attack: synth.AttackUDP, pps: 100000, class: classify.UDPFlood},
		{attack: synth.AttackICMP, pps: 50000, class: classify.ICMPFlood},
		{attack: synth.AttackFragment, pps: 50000, class: classify.FragmentFlood},
		{attack: synth.AttackAmplification, pps: 100000, class: classify.Amplification, check: func(t *testing.T, ev *pb.AnomalyEvent, g *synth.Gen) {
			m := ev.Fingerprint.Mitigation
			if !slices.Contains(m.SrcPorts, 53) || !slices.Contains(m.SrcPorts, 123) || !slices.Equal(m.Protocols, []uint32{17}) {
				t.Errorf("mitigation %v", m)
			}
			if m.PacketLengthMin == 0 || m.PacketLengthMax < 1400 {
				t.Errorf("packet length %d-%d", m.PacketLengthMin, m.PacketLengthMax)
			}
			if k := ev.Fingerprint.TopSrcPorts[0].Key; k != "53" && k != "123" {
				t.Errorf("top src port %s", k)
			}
		}},
		{attack: synth.AttackVolumetric, pps: 100000, class: classify.Volumetric, check: func(t *testing.T, ev *pb.AnomalyEvent, g *synth.Gen) {
			if ev.Fingerprint.TopProtocols[0].Key != "gre" {
				t.Errorf("top protocol %v", ev.Fingerprint.TopProtocols[0])
			}
		}},
		{attack: synth.AttackCarpet, pps: 100000, class: classify.CarpetBombing, check: func(t *testing.T, ev *pb.AnomalyEvent, g *synth.Gen) {
			if ev.Fingerprint.Mitigation.DstPrefix != g.Subnet.String() {
				t.Errorf("carpet mitigation dst %q, want the subnet", ev.Fingerprint.Mitigation.DstPrefix)
			}
			if ev.Fingerprint.DistinctDestinations < 200 {
				t.Errorf("distinct destinations %d", ev.Fingerprint.DistinctDestinations)
			}
		}},
		{attack: synth.AttackScanIn, pps: 200, class: classify.Scan, check: func(t *testing.T, ev *pb.AnomalyEvent, g *synth.Gen) {
			if ev.Fingerprint.Mitigation != nil {
				t.Errorf("inbound scan mitigation %v, want none (reported only)", ev.Fingerprint.Mitigation)
			}
		}},
		{attack: synth.AttackScanOut, pps: 200, class: classify.Scan, dir: pb.Direction_DIRECTION_OUTBOUND, check: func(t *testing.T, ev *pb.AnomalyEvent, g *synth.Gen) {
			if ev.Fingerprint.TopSources[0].Key != g.Host(30).String() {
				t.Errorf("scanner %v, want %s", ev.Fingerprint.TopSources[0], g.Host(30))
			}
			m := ev.Fingerprint.Mitigation
			// The scanned port (23) may be named; no other may.
			if m == nil || m.SrcPrefix != g.Host(30).String()+"/32" || m.DstPrefix != "" || !slices.Equal(m.Protocols, []uint32{6}) ||
				(len(m.DstPorts) > 0 && !slices.Equal(m.DstPorts, []uint32{23})) || m.Action != "discard" {
				t.Errorf("outbound scan mitigation %v, want the scanning host's TCP discarded", m)
			}
			t.Logf("outbound scan mitigation: %s", m.Description)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.attack, func(t *testing.T) {
			e, s := newEngine(t, nil)
			g := synth.New("203.0.113.0/24", "acme", 7)
			out := tc.dir == pb.Direction_DIRECTION_OUTBOUND
			tt := warm(e, g, out)
			if len(s.events) != 0 {
				t.Fatalf("events during warm-up: %v", s.events[0])
			}
			for end := tt + 120*sec; tt < end; tt += sec {
				feed(e, append(normal(g, tt, out), g.Attack(tc.attack, tt, tc.pps)...))
			}
			for end := tt + 120*sec; tt < end; tt += sec {
				feed(e, normal(g, tt, out))
			}
			starts, ends := s.kinds(pb.AnomalyEvent_START), s.kinds(pb.AnomalyEvent_END)
			if len(starts) != 1 {
				for _, ev := range starts {
					t.Logf("START %s %s %s score %.1f", ev.Class, ev.Metric, ev.Reason, ev.Score)
				}
				t.Fatalf("%d STARTs, want 1", len(starts))
			}
			st := starts[0]
			want := tc.dir
			if want == 0 {
				want = pb.Direction_DIRECTION_INBOUND
			}
			if st.Class != tc.class || st.Direction != want || st.Subnet != "203.0.113.0/24" || st.Customer != "acme" {
				t.Fatalf("START %s %s %s %s, want %s", st.Class, st.Direction, st.Subnet, st.Customer, tc.class)
			}
			if st.Fingerprint == nil || len(st.Fingerprint.TopSources) == 0 {
				t.Fatal("START without fingerprint")
			}
			if len(s.kinds(pb.AnomalyEvent_UPDATE)) == 0 {
				t.Error("no UPDATE during a 2-minute attack")
			}
			if len(ends) != 1 || ends[0].Id != st.Id || ends[0].EndedAtNs <= ends[0].StartedAtNs || ends[0].Seq == 0 {
				t.Fatalf("END events %v", ends)
			}
			if tc.class != classify.Scan && ends[0].PeakPps < uint64(tc.pps/2) {
				t.Errorf("END peak pps %d, attack %v", ends[0].PeakPps, tc.pps)
			}
			if tc.check != nil {
				tc.check(t, st, g)
			}
		})
	}
}

func TestTrafficDrop(t *testing.T) {
	e, s := newEngine(t, nil)
	g := synth.New("198.51.100.0/24", "acme", 3)
	tt := warm(e, g, false)
	// Two minutes of silence for this subnet while another keeps event time going.
	other := synth.New("192.0.2.0/24", "other", 4)
	for end := tt + 120*sec; tt < end; tt += sec {
		feed(e, other.Normal(tt, basePps, pktPerFlow))
	}
	starts := s.kinds(pb.AnomalyEvent_START)
	if len(starts) != 1 || starts[0].Class != classify.TrafficDrop || starts[0].Subnet != "198.51.100.0/24" {
		t.Fatalf("starts %v", starts)
	}
	if starts[0].Severity != pb.Severity_SEVERITY_CRITICAL {
		t.Errorf("severity %v for traffic to zero", starts[0].Severity)
	}
	for end := tt + 120*sec; tt < end; tt += sec {
		feed(e, append(other.Normal(tt, basePps, pktPerFlow), g.Normal(tt, basePps, pktPerFlow)...))
	}
	if ends := s.kinds(pb.AnomalyEvent_END); len(ends) != 1 || ends[0].Class != classify.TrafficDrop {
		t.Fatalf("ends %v", ends)
	}
}

// Two days of diurnal traffic (x4 between night and evening) with noise:
// no event, and the baseline tracks the cycle.
func TestDiurnalNoFalsePositives(t *testing.T) {
	if testing.Short() {
		t.Skip("two days of event time")
	}
	e, s := newEngine(t, nil)
	g := synth.New("203.0.113.0/24", "acme", 11)
	for tt := t0; tt < t0+2*86400*sec; tt += sec {
		feed(e, g.Normal(tt, synth.DailyPps(basePps, 0.6, tt), pktPerFlow))
	}
	if len(s.events) != 0 {
		for _, ev := range s.events[:min(5, len(s.events))] {
			t.Logf("%s %s %s %s", ev.Kind, ev.Class, ev.Reason, ev.Metric)
		}
		t.Fatalf("%d events on normal diurnal traffic", len(s.events))
	}
	if len(s.snaps) < 500 {
		t.Fatalf("%d snapshots in 2 days, want one per 5 min", len(s.snaps))
	}
	last := s.snaps[len(s.snaps)-1]
	if last.Metrics[1].Metric != "pps" || last.Metrics[1].Expected < 0.5*last.Metrics[1].Observed || last.Metrics[1].Expected > 2*last.Metrics[1].Observed {
		t.Fatalf("snapshot pps %+v", last.Metrics[1])
	}
}

// START comes within one window + 1 s of the first attack flow, wherever in
// a window the attack begins.
func TestTimeToStart(t *testing.T) {
	for _, offset := range []int64{0, 3, 7, 9} {
		e, s := newEngine(t, nil)
		g := synth.New("203.0.113.0/24", "acme", 5)
		tt := warm(e, g, false) + offset*sec
		start := int64(-1)
		for end := tt + 30*sec; tt < end && len(s.events) == 0; tt += sec {
			atk := g.Attack(synth.AttackSyn, tt, 100000)
			if start < 0 {
				start = int64(atk[0].TimeFlowEndNs)
				for _, f := range atk {
					start = min(start, int64(f.TimeFlowEndNs))
				}
			}
			feed(e, append(normal(g, tt, false), atk...))
		}
		if len(s.events) == 0 {
			t.Fatalf("offset %ds: no START", offset)
		}
		lat := float64(s.at[0]-start) / 1e9
		t.Logf("attack %d s into a window: START after %.2f s of event time", offset, lat)
		if lat > 11 {
			t.Errorf("offset %ds: START after %.2f s, want <= window + 1 s", offset, lat)
		}
	}
}

func TestLateAndBadFlowsCounted(t *testing.T) {
	e, _ := newEngine(t, nil)
	g := synth.New("203.0.113.0/24", "acme", 1)
	for tt := t0 + 100*sec; tt < t0+102*sec; tt += sec {
		feed(e, g.Normal(tt, basePps, pktPerFlow))
	}
	late := g.Normal(t0+80*sec, basePps, pktPerFlow)
	for _, f := range late {
		e.Fold(0, f)
	}
	if got := e.Dropped("late"); got != uint64(len(late)) {
		t.Fatalf("late drops %d, want %d", got, len(late))
	}
	bad := []*pb.Flow{
		{Subnet: "", Direction: pb.Direction_DIRECTION_INBOUND, TimeFlowEndNs: uint64(t0 + 100*sec)},
		{Subnet: "203.0.113.0/24", TimeFlowEndNs: uint64(t0 + 100*sec)},
		{Subnet: "203.0.113.0/24", Direction: pb.Direction_DIRECTION_INBOUND},
	}
	for _, f := range bad {
		e.Fold(0, f)
	}
	for _, r := range []string{"no_subnet", "no_direction", "no_time"} {
		if e.Dropped(r) != 1 {
			t.Errorf("%s drops %d, want 1", r, e.Dropped(r))
		}
	}
	// A flow ending within the lateness allowance is still folded.
	f := g.Normal(t0+96*sec, basePps, pktPerFlow)[0]
	f.TimeFlowEndNs = uint64(t0 + 99*sec)
	before := e.Dropped("late")
	e.Fold(0, f)
	if e.Dropped("late") != before {
		t.Fatal("flow within lateness allowance dropped")
	}
}

func TestAllowlistExcludesEvidence(t *testing.T) {
	e, s := newEngine(t, func(c *Config, _ *baseline.Config, _ *classify.Config) {
		c.Allowlist = []string{"0.0.0.0/0"}
	})
	g := synth.New("203.0.113.0/24", "acme", 2)
	feed(e, g.Attack(synth.AttackScanIn, t0, 200))
	if e.Dropped("allowlisted") != 200 || len(s.events) != 0 || e.Stats().Targets != 0 {
		t.Fatalf("allowlisted %d, events %d, targets %d", e.Dropped("allowlisted"), len(s.events), e.Stats().Targets)
	}
}

// A restored target is warm at once: it alerts without re-learning.
func TestCheckpointRestoreKeepsBaseline(t *testing.T) {
	e, _ := newEngine(t, nil)
	g := synth.New("203.0.113.0/24", "acme", 9)
	tt := warm(e, g, false)
	for end := tt + 20*sec; tt < end; tt += sec {
		feed(e, normal(g, tt, false))
	}
	recs, err := e.Checkpoint(nil)
	if err != nil || len(recs) != 1 {
		t.Fatalf("checkpoint %d records, %v", len(recs), err)
	}
	if again, _ := e.Checkpoint(nil); len(again) != 0 {
		t.Fatalf("clean targets checkpointed again: %d", len(again))
	}
	e2, s2 := newEngine(t, nil)
	if err := e2.Restore(recs[0].Partition, recs[0].Key, recs[0].Value); err != nil {
		t.Fatal(err)
	}
	if !e2.Warm("203.0.113.0/24", pb.Direction_DIRECTION_INBOUND) {
		t.Fatal("restored target not warm")
	}
	for end := tt + 30*sec; tt < end; tt += sec {
		feed(e2, append(normal(g, tt, false), g.Attack(synth.AttackUDP, tt, 100000)...))
	}
	if st := s2.kinds(pb.AnomalyEvent_START); len(st) != 1 || st[0].Class != classify.UDPFlood {
		t.Fatalf("restored engine starts %v", st)
	}
	if err := e2.Restore(0, "203.0.113.0/24|in", []byte{1, 2, 3}); err == nil {
		t.Fatal("corrupt checkpoint accepted")
	}
}
