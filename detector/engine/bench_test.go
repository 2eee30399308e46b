package engine

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/detector/synth"
	"github.com/packetworks/flowsentry/schemas/pb"
	"google.golang.org/protobuf/proto"
)

// flowPool is a mix of normal and attack flows over n subnets.
func flowPool(n, size int) []*pb.Flow {
	var pool []*pb.Flow
	gens := make([]*synth.Gen, n)
	for i := range gens {
		gens[i] = synth.New(fmt.Sprintf("10.%d.%d.0/24", i/256, i%256), "c", uint64(i))
	}
	for i := 0; len(pool) < size; i++ {
		g := gens[i%n]
		pool = append(pool, g.Normal(t0, 2000, 10)...)
		if i%7 == 0 {
			pool = append(pool, g.Attack(synth.AttackSyn, t0, 20000)...)
		}
	}
	return pool[:size]
}

// BenchmarkFold measures flows folded into window state per second on one
// core, window closing and evaluation included (1000 subnets, 1 M flows
// per event-time second, so a window closes every 10 M flows).
func BenchmarkFold(b *testing.B) {
	e, _ := newEngine(b, nil)
	pool := flowPool(1000, 1<<16)
	const perSec = 1_000_000
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for i := 0; i < b.N; i++ {
		f := pool[i&(len(pool)-1)]
		f.TimeFlowEndNs = uint64(t0 + int64(i)*(1e9/perSec))
		e.Fold(0, f)
		if i&255 == 255 {
			e.Advance()
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "flows/s")
	// Per CPU-second of this process (GC included): the per-core figure
	// that does not depend on what else runs on a shared machine.
	b.ReportMetric(float64(b.N)/(cpuTime()-cpu0).Seconds(), "flows/cpu-s")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// targetBytes measures heap bytes per target at rest: n subnets each see
// traffic in one window, then windows close until no aggregate is left.
func targetBytes(t testing.TB, n int) float64 {
	e, _ := newEngine(t, nil)
	g := synth.New("10.0.0.0/24", "c", 1)
	tmpl := g.Normal(t0, 2000, 10)[0]
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		f := proto.Clone(tmpl).(*pb.Flow)
		f.Subnet = fmt.Sprintf("10.%d.%d.0/24", i/65536, (i/256)%256) + fmt.Sprint(i%256)
		f.TimeFlowEndNs = uint64(t0 + int64(i%10)*sec)
		e.Fold(0, f)
		e.Fold(0, &pb.Flow{Subnet: f.Subnet, Direction: pb.Direction_DIRECTION_INBOUND, TimeFlowEndNs: f.TimeFlowEndNs, Packets: 1})
		if i%1000 == 999 {
			e.Advance()
		}
	}
	// Close every window with traffic, then two empty ones.
	for s := int64(10); s < 40; s++ {
		e.Fold(0, &pb.Flow{Subnet: "192.0.2.0/24", Direction: pb.Direction_DIRECTION_INBOUND, TimeFlowEndNs: uint64(t0 + s*sec), Packets: 1})
		e.Advance()
	}
	e.free = nil
	runtime.GC()
	runtime.ReadMemStats(&after)
	if e.Stats().Targets < n {
		t.Fatalf("%d targets tracked, want %d", e.Stats().Targets, n)
	}
	per := float64(after.HeapAlloc-before.HeapAlloc) / float64(e.Stats().Targets)
	runtime.KeepAlive(e)
	return per
}

// TestTargetMemory checks the 2 KiB per tracked subnet budget.
func TestTargetMemory(t *testing.T) {
	per := targetBytes(t, 20000)
	t.Logf("%.0f bytes per tracked target at rest", per)
	if per > 2048 {
		t.Fatalf("%.0f bytes per target, budget 2048", per)
	}
}

func BenchmarkTargetMemory(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.ReportMetric(targetBytes(b, 20000), "B/target")
	}
}

// BenchmarkTimeToStart reports the event time from the first attack flow
// to START (target: one window + 1 s), for an attack starting at a window
// boundary: the worst case (TestTimeToStart tries other offsets).
func BenchmarkTimeToStart(b *testing.B) {
	for i := 0; i < b.N; i++ {
		e, s := newEngine(b, nil)
		g := synth.New("203.0.113.0/24", "acme", uint64(i))
		tt := warm(e, g, false)
		first := int64(0)
		for end := tt + 30*sec; tt < end && len(s.events) == 0; tt += sec {
			atk := g.Attack(synth.AttackSyn, tt, 100000)
			if first == 0 {
				first = tt
			}
			feed(e, append(normal(g, tt, false), atk...))
		}
		if len(s.events) == 0 {
			b.Fatal("no START")
		}
		b.ReportMetric(float64(s.at[0]-first)/1e9, "s-to-START")
	}
}
