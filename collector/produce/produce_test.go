package produce

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/schemas/dedup"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/packetworks/flowsentry/schemas/topics"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
)

// fakeWriter records messages; fail makes writes fail while it is set.
type fakeWriter struct {
	mu    sync.Mutex
	msgs  []*pb.FlowBatch
	parts []int
	keys  []string
	fail  error
	block chan struct{}
	n     int
	// lostAcks: this many writes store their messages and then fail, as
	// when the broker stored a batch but its acknowledgement was lost.
	lostAcks int
}

func (w *fakeWriter) Write(ctx context.Context, msgs []*Message) error {
	if w.block != nil {
		select {
		case <-w.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail != nil {
		return w.fail
	}
	for _, m := range msgs {
		b := &pb.FlowBatch{}
		if err := proto.Unmarshal(m.Value, b); err != nil {
			return err
		}
		w.msgs = append(w.msgs, b)
		w.parts = append(w.parts, m.Partition)
		w.keys = append(w.keys, string(m.Key))
	}
	if w.lostAcks > 0 {
		w.lostAcks--
		return io.ErrUnexpectedEOF // the broker went away before answering
	}
	return nil
}
func (w *fakeWriter) Partitions(context.Context) (int, error) { return w.n, nil }
func (w *fakeWriter) Close() error                            { return nil }

func (w *fakeWriter) flows() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, b := range w.msgs {
		n += len(b.Flows)
	}
	return n
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func flowFor(i int) *pb.Flow {
	a := netip.AddrFrom4([4]byte{203, 0, byte(i % 200), 1})
	return &pb.Flow{SrcAddr: a.AsSlice(), DstAddr: a.AsSlice(), Bytes: uint64(i), Subnet: netip.PrefixFrom(a, 24).Masked().String()}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBatchesFollowPartitionRule(t *testing.T) {
	w := &fakeWriter{n: 8}
	p := New(Config{Collector: "c1", BatchBytes: 2000, Linger: time.Hour, Partitions: 8}, w, NewMetrics(nil), quiet)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, 5*time.Second); close(done) }()
	b := p.NewBatcher()
	const n = 1000
	for i := 0; i < n; i++ {
		b.Flow(flowFor(i))
	}
	b.FlushAll()
	waitFor(t, "all flows", func() bool { return w.flows() == n })
	cancel()
	<-done
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, batch := range w.msgs {
		if batch.Collector != "c1" {
			t.Fatalf("collector %q", batch.Collector)
		}
		if w.keys[i] != batch.Flows[0].Subnet {
			t.Fatalf("key %q, first flow subnet %q", w.keys[i], batch.Flows[0].Subnet)
		}
		for _, f := range batch.Flows {
			if got := topics.Partition([]byte(f.Subnet), 8); got != w.parts[i] {
				t.Fatalf("flow of subnet %s (partition %d) in batch for partition %d", f.Subnet, got, w.parts[i])
			}
		}
	}
	if len(w.msgs) < 8 {
		t.Errorf("only %d batches for 1000 flows of 2000-byte batches", len(w.msgs))
	}
}

func TestLingerFlush(t *testing.T) {
	w := &fakeWriter{n: 8}
	p := New(Config{Linger: 50 * time.Millisecond}, w, NewMetrics(nil), quiet)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx, time.Second)
	b := p.NewBatcher()
	b.Flow(flowFor(1))
	b.FlushOld(time.Now())
	if w.flows() != 0 || !b.Pending() {
		t.Fatal("flushed before the linger time")
	}
	b.FlushOld(time.Now().Add(60 * time.Millisecond))
	waitFor(t, "lingering flow", func() bool { return w.flows() == 1 })
}

// With Kafka down the backlog grows to its bound, further flows are
// dropped and counted, and the backlog is delivered when Kafka returns.
func TestBufferWhileKafkaDown(t *testing.T) {
	w := &fakeWriter{n: 8, fail: errors.New("connection refused")}
	m := NewMetrics(nil)
	p := New(Config{BatchBytes: 1000, BufferBytes: 20000, Linger: time.Hour, RetryBackoff: 5 * time.Millisecond, Senders: 1}, w, m, quiet)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, 5*time.Second); close(done) }()
	b := p.NewBatcher()
	const n = 2000
	for i := 0; i < n; i++ {
		b.Flow(flowFor(i))
	}
	b.FlushAll()
	bytes, queued := p.Backlog()
	dropped := int(testutil.ToFloat64(m.droppedQueue))
	if dropped == 0 || bytes > 20000+1100 {
		t.Fatalf("backlog %d bytes, %d dropped: bound not applied", bytes, dropped)
	}
	waitFor(t, "unhealthy while every write fails", func() bool { return p.Healthy() != nil })
	w.mu.Lock()
	w.fail = nil
	w.mu.Unlock()
	waitFor(t, "backlog delivered", func() bool { b, _ := p.Backlog(); return b == 0 })
	got := w.flows()
	// Every flow is either delivered or counted as dropped; none vanish.
	// (The batch a sender held while failing is part of the backlog.)
	if got+dropped != n {
		t.Fatalf("delivered %d + dropped %d != %d (backlog had %d flows)", got, dropped, n, queued)
	}
	cancel()
	<-done
}

func TestPermanentErrorDrops(t *testing.T) {
	w := &fakeWriter{n: 8, fail: kafka.MessageSizeTooLarge}
	m := NewMetrics(nil)
	p := New(Config{Linger: time.Hour}, w, m, quiet)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx, time.Second)
	b := p.NewBatcher()
	b.Flow(flowFor(1))
	b.Flow(flowFor(2))
	b.FlushAll()
	waitFor(t, "kafka drop", func() bool { return testutil.ToFloat64(m.droppedKafka) == 2 })
}

func TestPartitionCountChange(t *testing.T) {
	w := &fakeWriter{n: 16}
	p := New(Config{Linger: time.Hour, Partitions: 8}, w, NewMetrics(nil), quiet)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx, time.Second)
	b := p.NewBatcher()
	for i := 0; i < 100; i++ {
		b.Flow(flowFor(i))
	}
	go p.RefreshPartitions(ctx, time.Hour)
	waitFor(t, "metadata", func() bool { return p.Partitions() == 16 })
	for i := 0; i < 100; i++ {
		b.Flow(flowFor(i))
	}
	b.FlushAll()
	waitFor(t, "flows", func() bool { return w.flows() == 200 })
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, batch := range w.msgs {
		for _, f := range batch.Flows {
			p8, p16 := topics.Partition([]byte(f.Subnet), 8), topics.Partition([]byte(f.Subnet), 16)
			if w.parts[i] != p8 && w.parts[i] != p16 {
				t.Fatalf("flow in partition %d, hashes to %d (8) / %d (16)", w.parts[i], p8, p16)
			}
		}
	}
}

// TestBatcherSequences: every sealed batch carries the producer's id and
// a sequence unique across partitions and batchers (several sockets share
// one producer); another producer has another id.
func TestBatcherSequences(t *testing.T) {
	w := &fakeWriter{n: 8}
	p := New(Config{BatchBytes: 1200, Linger: time.Hour, Partitions: 8, Senders: 3}, w, NewMetrics(nil), quiet)
	if p.ID() == 0 {
		t.Fatal("producer id 0: consumers would never deduplicate")
	}
	if q := New(Config{}, w, NewMetrics(nil), quiet); q.ID() == p.ID() {
		t.Fatalf("two producers drew the same id %x", p.ID())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, 5*time.Second); close(done) }()
	const batchers, perBatcher = 4, 3000
	var wg sync.WaitGroup
	for g := 0; g < batchers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := p.NewBatcher()
			for i := 0; i < perBatcher; i++ {
				b.Flow(flowFor(g*perBatcher + i))
			}
			b.FlushAll()
		}()
	}
	wg.Wait()
	waitFor(t, "all flows", func() bool { return w.flows() == batchers*perBatcher })
	cancel()
	<-done
	w.mu.Lock()
	defer w.mu.Unlock()
	seen := map[uint64]bool{}
	for _, m := range w.msgs {
		if m.ProducerId != p.ID() {
			t.Fatalf("batch of producer %x, want %x", m.ProducerId, p.ID())
		}
		if m.Sequence == 0 || seen[m.Sequence] {
			t.Fatalf("sequence %d is zero or assigned twice", m.Sequence)
		}
		seen[m.Sequence] = true
	}
	// Nothing dropped: the sequences are exactly 1..batches.
	if n := uint64(len(w.msgs)); p.Sequence() != n || !seen[1] || !seen[n] {
		t.Fatalf("%d batches, last sequence %d", n, p.Sequence())
	}
}

// TestRetryAfterLostAckKeepsIdentity: a batch stored by Kafka whose
// acknowledgement was lost is written again with the same bytes; the copies
// share (producer_id, sequence), so a consumer's dedup window sees every
// flow once.
func TestRetryAfterLostAckKeepsIdentity(t *testing.T) {
	w := &fakeWriter{n: 8, lostAcks: 3}
	p := New(Config{BatchBytes: 1000, Linger: time.Hour, RetryBackoff: time.Millisecond, Senders: 2}, w, NewMetrics(nil), quiet)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx, 5*time.Second); close(done) }()
	b := p.NewBatcher()
	const n = 500
	for i := 0; i < n; i++ {
		b.Flow(flowFor(i))
	}
	b.FlushAll()
	waitFor(t, "backlog delivered", func() bool { by, _ := p.Backlog(); return by == 0 && w.flows() >= n })
	cancel()
	<-done
	w.mu.Lock()
	defer w.mu.Unlock()
	win := dedup.NewWindow(dedup.Config{})
	byFlow := map[uint64]int{}
	dups, total := 0, 0
	for i, m := range w.msgs {
		total += len(m.Flows)
		if win.Observe(w.parts[i], dedup.Origin{Producer: m.ProducerId, Sequence: m.Sequence}) == dedup.Duplicate {
			dups += len(m.Flows)
			continue
		}
		for _, f := range m.Flows {
			byFlow[f.Bytes]++
		}
	}
	if dups == 0 {
		t.Fatal("no re-sent copy in the topic: the lost acknowledgements were not retried")
	}
	if total != n+dups {
		t.Fatalf("%d flows written, %d unique + %d in copies", total, n, dups)
	}
	for i := 0; i < n; i++ {
		if byFlow[uint64(i)] != 1 {
			t.Fatalf("flow %d seen %d times after dedup", i, byFlow[uint64(i)])
		}
	}
	t.Logf("%d flows, %d more in re-sent copies, every flow once after dedup", n, dups)
}

func BenchmarkBatcher(b *testing.B) {
	w := &fakeWriter{n: 8}
	p := New(Config{Linger: time.Hour}, w, NewMetrics(nil), quiet)
	bt := p.NewBatcher()
	f := flowFor(7)
	f.TimeReceivedNs, f.TimeFlowStartNs, f.TimeFlowEndNs, f.Packets, f.SamplingRate = 1<<60, 1<<60, 1<<60, 10, 100
	b.ReportAllocs()
	for b.Loop() {
		bt.Flow(f)
		if len(p.queue) > 0 {
			m := <-p.queue
			p.dequeued(m)
			p.release(m)
		}
	}
}
