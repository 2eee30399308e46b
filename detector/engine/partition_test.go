package engine

import (
	"slices"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/detector/baseline"
	"github.com/packetworks/flowsentry/detector/classify"
	"github.com/packetworks/flowsentry/detector/synth"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// feedP folds one second of flows read from partition p.
func feedP(e *Engine, p int32, flows []*pb.Flow) {
	slices.SortFunc(flows, func(a, b *pb.Flow) int { return int(int64(a.TimeFlowEndNs) - int64(b.TimeFlowEndNs)) })
	for _, f := range flows {
		e.Fold(p, f)
	}
	e.Advance()
}

func shortWarmup(_ *Config, b *baseline.Config, _ *classify.Config) { b.WarmupWindows = 30 }

// Partition A is read 60 s of event time behind partition B (backlog at
// start, uneven consumer lag, replay after a handover). With a clock per
// partition none of A's flows is late, A learns and A's attack is
// detected. The control reads both subnets from one partition, i.e. one
// clock: A's flows are then all late, which is the bug this guards.
func TestLaggingPartitionNotLate(t *testing.T) {
	cases := []struct {
		name       string
		partA      int32
		wantLate   bool
		wantDetect bool
	}{
		{name: "own partition", partA: 0, wantLate: false, wantDetect: true},
		{name: "shared clock (control)", partA: 1, wantLate: true, wantDetect: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, s := newEngine(t, shortWarmup)
			a := synth.New("203.0.113.0/24", "acme", 21)
			b := synth.New("198.51.100.0/24", "beta", 22)
			const lag = 60 * sec
			// B's backlog is read first: B is 60 s ahead before A starts.
			for tt := t0; tt < t0+lag; tt += sec {
				feedP(e, 1, b.Normal(tt, basePps, pktPerFlow))
			}
			var folded int
			tt := t0
			for ; tt < t0+400*sec; tt += sec {
				feedP(e, 1, b.Normal(tt+lag, basePps, pktPerFlow))
				fl := a.Normal(tt, basePps, pktPerFlow)
				folded += len(fl)
				feedP(e, tc.partA, fl)
			}
			for end := tt + 30*sec; tt < end; tt += sec {
				feedP(e, 1, b.Normal(tt+lag, basePps, pktPerFlow))
				feedP(e, tc.partA, append(a.Normal(tt, basePps, pktPerFlow), a.Attack(synth.AttackUDP, tt, 100000)...))
			}
			late := e.Dropped("late")
			learned := e.Learned("203.0.113.0/24", pb.Direction_DIRECTION_INBOUND)
			t.Logf("late drops %d (A read %d normal flows and an attack); A learned %d windows", late, folded, learned)
			if tc.wantLate != (late > 0) {
				t.Fatalf("late drops %d, want late: %v", late, tc.wantLate)
			}
			if !tc.wantLate && learned < 38 {
				t.Errorf("A learned %d windows of 40", learned)
			}
			starts := s.kinds(pb.AnomalyEvent_START)
			detected := len(starts) == 1 && starts[0].Subnet == "203.0.113.0/24" && starts[0].Class == classify.UDPFlood
			if detected != tc.wantDetect {
				t.Fatalf("A's UDP flood detected %v, want %v (starts %v)", detected, tc.wantDetect, starts)
			}
			if detected {
				mA, _ := e.Watermark(0)
				mB, _ := e.Watermark(1)
				if mB-mA < lag-2*sec {
					t.Errorf("watermarks A %d B %d: A should still lag", mA/sec, mB/sec)
				}
			}
		})
	}
}

// A partition that reads nothing keeps its own watermark until it has been
// idle for partition_idle_seconds of wall clock, then follows the active
// partitions: its silent subnet's windows close and the traffic drop is
// raised.
func TestIdlePartitionFollowsActive(t *testing.T) {
	e, s := newEngine(t, shortWarmup)
	wall := time.Unix(1_800_000_000, 0)
	e.SetWallClock(func() time.Time { return wall })
	a := synth.New("203.0.113.0/24", "acme", 31)
	b := synth.New("198.51.100.0/24", "beta", 32)
	tt := t0
	for ; tt < t0+400*sec; tt += sec {
		feedP(e, 0, a.Normal(tt, basePps, pktPerFlow))
		feedP(e, 1, b.Normal(tt, basePps, pktPerFlow))
		wall = wall.Add(10 * time.Millisecond)
	}
	if !e.Warm("203.0.113.0/24", pb.Direction_DIRECTION_INBOUND) {
		t.Fatal("A not warm")
	}
	_, closedA := e.Watermark(0)
	// A falls silent; B goes on 60 s of event time within 6 s of wall
	// clock (below the 30 s idle timeout): A's windows wait.
	for end := tt + 60*sec; tt < end; tt += sec {
		feedP(e, 1, b.Normal(tt, basePps, pktPerFlow))
		wall = wall.Add(100 * time.Millisecond)
	}
	if _, c := e.Watermark(0); c != closedA || len(s.events) != 0 {
		t.Fatalf("A's clock moved from %d to %d (events %d) before its idle timeout", closedA/sec, c/sec, len(s.events))
	}
	wall = wall.Add(30 * time.Second)
	for end := tt + 60*sec; tt < end; tt += sec {
		feedP(e, 1, b.Normal(tt, basePps, pktPerFlow))
		wall = wall.Add(100 * time.Millisecond)
	}
	_, cA := e.Watermark(0)
	_, cB := e.Watermark(1)
	if cA != cB {
		t.Errorf("idle A closed up to %d, active B %d: A should follow B", cA/sec, cB/sec)
	}
	starts := s.kinds(pb.AnomalyEvent_START)
	if len(starts) != 1 || starts[0].Subnet != "203.0.113.0/24" || starts[0].Class != classify.TrafficDrop {
		t.Fatalf("starts %v, want A's traffic drop", starts)
	}
	// A speaks again: it is active at once and no current flow is late.
	late := e.Dropped("late")
	for end := tt + 30*sec; tt < end; tt += sec {
		feedP(e, 0, a.Normal(tt, basePps, pktPerFlow))
		feedP(e, 1, b.Normal(tt, basePps, pktPerFlow))
		wall = wall.Add(100 * time.Millisecond)
	}
	if e.Dropped("late") != late {
		t.Errorf("%d of A's flows late after it resumed", e.Dropped("late")-late)
	}
	if ends := s.kinds(pb.AnomalyEvent_END); len(ends) != 1 || ends[0].Class != classify.TrafficDrop {
		t.Errorf("ends %v, want the drop to end", ends)
	}
}

// Dropping a revoked partition forgets its clock: a later re-assignment
// replays from an older offset without late drops.
func TestDropForgetsPartitionClock(t *testing.T) {
	e, _ := newEngine(t, shortWarmup)
	a := synth.New("203.0.113.0/24", "acme", 41)
	for tt := t0 + 100*sec; tt < t0+130*sec; tt += sec {
		feedP(e, 0, a.Normal(tt, basePps, pktPerFlow))
	}
	e.Drop(0)
	if st := e.Stats(); st.Targets != 0 || st.OpenWindow != 0 {
		t.Fatalf("after Drop: %+v", st)
	}
	for tt := t0 + 100*sec; tt < t0+110*sec; tt += sec {
		feedP(e, 0, a.Normal(tt, basePps, pktPerFlow))
	}
	if n := e.Dropped("late"); n != 0 {
		t.Fatalf("%d flows late after re-assignment", n)
	}
}
