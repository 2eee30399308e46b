package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/alerter/sink/rows"
	"github.com/packetworks/flowsentry/alerter/sink/store"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
)

// memFlows is an in-memory flows table with a rollup: it counts every
// (partition, offset, index) written, so a test sees duplicates, and it can
// fail an insert after writing part of it, as ClickHouse does when it dies
// between two day partitions of one batch, or after the flows part and
// before the views' parts (viewsLost).
type memFlows struct {
	mu          sync.Mutex
	count       map[[3]uint64]int
	fps         map[[3]uint64][]store.Fingerprint
	stored      []rows.Flow // every row written, in order
	bytes       uint64
	rollupBytes uint64 // what the views saw
	failNext    int    // fail this many inserts...
	partial     int    // ...after writing this many rows of each
	viewsLost   bool   // ...and their rollup rows were lost
	dataErr     bool   // refuse rows whose customer is "bad" as invalid
	heldCalls   int
	heldRanges  [][2]uint64
	heldBatches int // batch identities asked about
	repairs     int // RepairRollups calls
	failRepairs int // fail this many repairs
}

func newMemFlows() *memFlows {
	return &memFlows{count: map[[3]uint64]int{}, fps: map[[3]uint64][]store.Fingerprint{}}
}

func (m *memFlows) InsertFlows(_ context.Context, rs []rows.Flow) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dataErr {
		for _, r := range rs {
			if r.Customer == "bad" {
				return &store.DataError{Err: errors.New("bad customer")}
			}
		}
	}
	n := len(rs)
	fail := m.failNext > 0
	if fail {
		m.failNext--
		n = min(m.partial, len(rs))
	}
	for i := range rs[:n] {
		r := &rs[i]
		k := [3]uint64{uint64(r.KafkaPartition), r.KafkaOffset, uint64(r.KafkaIndex)}
		m.count[k]++
		m.fps[k] = append(m.fps[k], store.FingerprintOf(r))
		m.stored = append(m.stored, *r)
		m.bytes += r.Bytes
		if !(fail && m.viewsLost) {
			m.rollupBytes += r.Bytes
		}
	}
	if fail {
		return io.ErrUnexpectedEOF
	}
	return nil
}

// HeldFlows answers like the real query, without its time and key bounds
// (an optimisation there): rows inside the offset ranges or with one of
// the batch identities.
func (m *memFlows) HeldFlows(_ context.Context, ranges []store.Range, batches []store.Batch, tmin, tmax time.Time, keys []store.Key) ([]store.HeldRow, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.heldCalls++
	for _, r := range ranges {
		m.heldRanges = append(m.heldRanges, [2]uint64{r.Lo, r.Hi})
	}
	m.heldBatches += len(batches)
	want := map[store.Batch]bool{}
	for _, b := range batches {
		want[b] = true
	}
	var out []store.HeldRow
	for i := range m.stored {
		r := &m.stored[i]
		b := store.Batch{Producer: r.ProducerID, Sequence: r.Sequence}
		in := want[b]
		for _, g := range ranges {
			in = in || (r.KafkaPartition == g.Partition && r.KafkaOffset >= g.Lo && r.KafkaOffset <= g.Hi)
		}
		if in {
			out = append(out, store.HeldRow{Record: store.Record{Partition: r.KafkaPartition, Offset: r.KafkaOffset, Index: r.KafkaIndex},
				Batch: b, Fingerprint: store.FingerprintOf(r)})
		}
	}
	return out, nil
}

// RepairRollups makes the one rollup equal to the flows, as the real one
// does for the cells it is given.
func (m *memFlows) RepairRollups(context.Context, time.Time, time.Time, []store.Key) ([]store.RepairReport, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.repairs++
	if m.failRepairs > 0 {
		m.failRepairs--
		return nil, io.ErrUnexpectedEOF
	}
	rep := store.RepairReport{Table: "flows_1m"}
	if m.rollupBytes < m.bytes {
		rep.Repaired = 1
		m.rollupBytes = m.bytes
	}
	return []store.RepairReport{rep}, nil
}

func (m *memFlows) duplicates() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := 0
	for _, c := range m.count {
		if c > 1 {
			d += c - 1
		}
	}
	return d
}

type memDead struct {
	mu sync.Mutex
	dl []DeadLetter
}

func (d *memDead) Write(_ context.Context, dl []DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dl = append(d.dl, dl...)
	return nil
}

// flowMessages makes n messages on partition p, perMsg flows each, 100 bytes
// per flow, received at t0 + offset seconds.
func flowMessages(t *testing.T, p int, from, n, perMsg int, t0 time.Time) []Message {
	t.Helper()
	var out []Message
	for o := from; o < from+n; o++ {
		fb := &pb.FlowBatch{Collector: "test"}
		for i := 0; i < perMsg; i++ {
			fb.Flows = append(fb.Flows, &pb.Flow{Type: pb.Flow_IPFIX, TimeReceivedNs: uint64(t0.Add(time.Duration(o) * time.Second).UnixNano()),
				Bytes: 100, Packets: 1, Proto: 6, SrcAddr: []byte{192, 0, 2, 1}, DstAddr: []byte{203, 0, 113, byte(i)},
				Customer: "acme", Subnet: "203.0.113.0/24", Direction: pb.Direction_DIRECTION_INBOUND})
		}
		v, err := proto.Marshal(fb)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Message{Topic: "flows", Partition: p, Offset: int64(o), Value: v})
	}
	return out
}

type commits struct {
	mu   sync.Mutex
	last map[int]int64
	// crashAfter: the nth commit (1-based) and every later one fail as a
	// crash would: the batch is in ClickHouse, the offset is not in Kafka.
	crashAfter int
	n          int
}

func (c *commits) commit(_ context.Context, offs map[int]int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if c.crashAfter > 0 && c.n >= c.crashAfter {
		return errStopped
	}
	if c.last == nil {
		c.last = map[int]int64{}
	}
	for p, o := range offs {
		c.last[p] = o
	}
	return nil
}

func testConfig(maxRows int) Config {
	c := DefaultConfig()
	c.Batch.MaxRows = maxRows
	c.Batch.MaxWait = 20 * time.Millisecond
	c.Retry.InitialBackoff = time.Millisecond
	c.Retry.MaxBackoff = 5 * time.Millisecond
	return c
}

// runPipeline feeds msgs to a fresh pipeline (a fresh assignment) and stops
// it when every message is committed or the pipeline stops by itself.
func runPipeline(t *testing.T, cfg Config, st FlowStore, dead DeadLetters, c *commits, msgs []Message) error {
	t.Helper()
	return runPipelineMetrics(t, cfg, st, dead, c, msgs, NewMetrics(nil))
}

func runPipelineMetrics(t *testing.T, cfg Config, st FlowStore, dead DeadLetters, c *commits, msgs []Message, m *Metrics) error {
	t.Helper()
	p := newPipeline[rows.Flow]("flows", FlowsTable{Store: st}, cfg, dead, c.commit, m, newOffsets(),
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in := make(chan decoded[rows.Flow], len(msgs))
	for _, m := range msgs {
		in <- p.decode(m)
	}
	want := map[int]int64{}
	for _, m := range msgs {
		want[m.Partition] = max(want[m.Partition], m.Offset+1)
	}
	done := make(chan error, 1)
	go func() { done <- p.run(ctx, in) }()
	for {
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Millisecond):
		}
		c.mu.Lock()
		all := true
		for part, o := range want {
			if c.last[part] != o {
				all = false
			}
		}
		c.mu.Unlock()
		if all {
			cancel()
			<-done
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("timeout: committed %v, want %v", c.last, want)
		}
	}
}

func TestPipelineExactlyOnce(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 23, 59, 30, 0, time.UTC) // batches cross midnight
	msgs := append(flowMessages(t, 0, 0, 60, 3, t0), flowMessages(t, 1, 0, 40, 2, t0)...)
	const wantRows = 60*3 + 40*2
	for _, tc := range []struct {
		name string
		// setup prepares the store and the first run's commits.
		crashAfter    int
		failNext      int
		partial       int
		viewsLost     bool
		failRepairs   int
		wantSkipped   bool
		wantHeldCalls bool
	}{
		{name: "clean run", wantHeldCalls: true},
		{name: "crash after insert before commit", crashAfter: 3, wantSkipped: true, wantHeldCalls: true},
		{name: "crash at first commit", crashAfter: 1, wantSkipped: true, wantHeldCalls: true},
		{name: "insert fails half-way then succeeds", failNext: 2, partial: 7, wantSkipped: true, wantHeldCalls: true},
		{name: "insert fails before writing", failNext: 3, partial: 0, wantHeldCalls: true},
		{name: "insert dies after the flows part, before the views'", failNext: 1, partial: 50, viewsLost: true,
			wantSkipped: true, wantHeldCalls: true},
		{name: "views lost and the first repair fails", failNext: 1, partial: 50, viewsLost: true, failRepairs: 2,
			wantSkipped: true, wantHeldCalls: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemFlows()
			st.failNext, st.partial, st.viewsLost, st.failRepairs = tc.failNext, tc.partial, tc.viewsLost, tc.failRepairs
			c := &commits{crashAfter: tc.crashAfter}
			err := runPipeline(t, testConfig(50), st, &memDead{}, c, msgs)
			if tc.crashAfter > 0 {
				if !errors.Is(err, errStopped) {
					t.Fatalf("first run: want a crash, got %v", err)
				}
				// Restart: the group hands the partitions out again from the
				// last committed offsets.
				var replay []Message
				for _, m := range msgs {
					if next, ok := c.last[m.Partition]; !ok || m.Offset >= next {
						replay = append(replay, m)
					}
				}
				c.crashAfter = 0
				err = runPipeline(t, testConfig(50), st, &memDead{}, c, replay)
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := st.duplicates(); d != 0 {
				t.Fatalf("%d rows written twice", d)
			}
			if len(st.count) != wantRows || st.bytes != wantRows*100 {
				t.Fatalf("rows %d bytes %d, want %d rows %d bytes", len(st.count), st.bytes, wantRows, wantRows*100)
			}
			if c.last[0] != 60 || c.last[1] != 40 {
				t.Fatalf("committed %v, want partition 0 at 60 and 1 at 40", c.last)
			}
			if tc.wantHeldCalls && st.heldCalls == 0 {
				t.Fatal("the replay check never asked the store")
			}
			if st.rollupBytes != st.bytes {
				t.Fatalf("rollup holds %d bytes, flows %d", st.rollupBytes, st.bytes)
			}
			if tc.wantSkipped && st.repairs == 0 {
				t.Fatal("rows were found held but the rollups were not checked")
			}
			if !tc.wantSkipped && st.repairs != 0 {
				t.Fatalf("%d rollup repairs without any held row", st.repairs)
			}
		})
	}
}

// TestPipelineChecksOnlyTheReplayWindow: once a partition's first
// replay_check_rows rows are past, batches go straight to the insert.
func TestPipelineChecksOnlyTheReplayWindow(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	msgs := flowMessages(t, 0, 0, 100, 1, t0)
	st := newMemFlows()
	cfg := testConfig(10)
	cfg.Consumer.ReplayCheckRows = 25
	if err := runPipeline(t, cfg, st, &memDead{}, &commits{}, msgs); err != nil {
		t.Fatal(err)
	}
	for _, r := range st.heldRanges {
		if r[0] >= 25 {
			t.Errorf("checked offsets %v beyond the 25-row window", r)
		}
	}
	if st.heldCalls == 0 || st.heldCalls > 4 {
		t.Fatalf("held calls = %d, want 1..4 (batches of 10 within the first 25 rows)", st.heldCalls)
	}
}

func TestPipelineDeadLetters(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	msgs := flowMessages(t, 0, 0, 10, 2, t0)
	// Offset 3: not a FlowBatch at all. Offset 5: second flow has a 5-byte
	// address. Offset 7: rows the store refuses as invalid.
	msgs[3].Value = []byte{0xff, 0xff, 0xff}
	fb := &pb.FlowBatch{}
	_ = proto.Unmarshal(msgs[5].Value, fb)
	fb.Flows[1].SrcAddr = []byte{1, 2, 3, 4, 5}
	msgs[5].Value, _ = proto.Marshal(fb)
	fb = &pb.FlowBatch{}
	_ = proto.Unmarshal(msgs[7].Value, fb)
	fb.Flows[0].Customer = "bad"
	msgs[7].Value, _ = proto.Marshal(fb)

	st := newMemFlows()
	st.dataErr = true
	dead := &memDead{}
	c := &commits{}
	if err := runPipeline(t, testConfig(100), st, dead, c, msgs); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, d := range dead.dl {
		got[fmt.Sprintf("%d/%d", d.Source.Offset, d.Index)] = true
	}
	for _, want := range []string{"3/-1", "5/1", "7/-1"} {
		if !got[want] {
			t.Errorf("missing dead letter %s; got %v", want, got)
		}
	}
	if len(dead.dl) != 3 {
		t.Errorf("%d dead letters, want 3", len(dead.dl))
	}
	// 20 flows - 2 (offset 3) - 1 (offset 5) - 2 (offset 7) = 15 written.
	if len(st.count) != 15 {
		t.Errorf("%d rows written, want 15", len(st.count))
	}
	if c.last[0] != 10 {
		t.Errorf("committed %v, want 10", c.last)
	}
}

// TestPipelineRecreatedTopic: ClickHouse holds rows at the same (partition,
// offset, index) as the messages, but with other content (an earlier
// incarnation of the topic): they are inserted, not skipped, and counted.
func TestPipelineRecreatedTopic(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	old := flowMessages(t, 0, 0, 10, 2, t0)
	st := newMemFlows()
	if err := runPipeline(t, testConfig(100), st, &memDead{}, &commits{}, old); err != nil {
		t.Fatal(err)
	}
	// The new topic: same positions, flows received a minute later, plus
	// offsets 10..14 that never existed before. Offset 3 carries the very
	// same flows as before (identical records: skipping them is right).
	now := flowMessages(t, 0, 0, 15, 2, t0.Add(time.Minute))
	now[3] = old[3]
	m := NewMetrics(nil)
	if err := runPipelineMetrics(t, testConfig(100), st, &memDead{}, &commits{}, now, m); err != nil {
		t.Fatal(err)
	}
	if got := len(st.count); got != 15*2 {
		t.Fatalf("%d distinct positions, want 30", got)
	}
	var stored int
	for _, fps := range st.fps {
		stored += len(fps)
	}
	if want := 10*2 + 14*2; stored != want {
		t.Errorf("%d rows stored, want %d (20 old + 28 new; offset 3 identical, skipped)", stored, want)
	}
	if got := testutil.ToFloat64(m.ReplayReused.WithLabelValues("flows")); got != 9*2 {
		t.Errorf("replay_reused_positions_total = %v, want 18", got)
	}
	if got := testutil.ToFloat64(m.ReplaySkipped.WithLabelValues("flows")); got != 2 {
		t.Errorf("replay_skipped_rows_total = %v, want 2 (offset 3)", got)
	}
}

// withOrigin gives each message the identity producer/seq+i, as the
// collector stamps its batches.
func withOrigin(t *testing.T, msgs []Message, producer, seq uint64) []Message {
	t.Helper()
	out := make([]Message, len(msgs))
	for i, m := range msgs {
		fb := &pb.FlowBatch{}
		if err := proto.Unmarshal(m.Value, fb); err != nil {
			t.Fatal(err)
		}
		fb.ProducerId, fb.Sequence = producer, seq+uint64(i)
		v, err := proto.Marshal(fb)
		if err != nil {
			t.Fatal(err)
		}
		m.Value = v
		out[i] = m
	}
	return out
}

// resend is a copy of m written again by its producer at offset.
func resend(m Message, offset int64) Message {
	m.Offset = offset
	return m
}

// copies counts rows stored more than once by content and batch identity
// (the position differs between an original and its re-sent copy).
func (m *memFlows) copies() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	type key struct {
		store.Batch
		idx uint32
		fp  store.Fingerprint
	}
	seen := map[key]int{}
	n := 0
	for i := range m.stored {
		r := &m.stored[i]
		k := key{store.Batch{Producer: r.ProducerID, Sequence: r.Sequence}, r.KafkaIndex, store.FingerprintOf(r)}
		if seen[k] > 0 {
			n++
		}
		seen[k]++
	}
	return n
}

// TestPipelineDropsResentBatches: copies of a batch re-sent by its producer
// after a lost acknowledgement (same bytes, later offsets, possibly after
// newer batches) are not written, are counted, and their offsets are
// committed; batches without an identity (older collectors) never are
// dropped.
func TestPipelineDropsResentBatches(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	const producer = 0xc0ffee0000000001
	orig := withOrigin(t, flowMessages(t, 0, 0, 10, 3, t0), producer, 1)
	msgs := append([]Message{}, orig...)
	// Offsets 10..13: copies of 9 (right after), 2 and 5 (after newer
	// batches: several senders), and 9 again (a second lost ack).
	msgs = append(msgs, resend(orig[9], 10), resend(orig[2], 11), resend(orig[5], 12), resend(orig[9], 13))
	// 14: a new batch of the same producer; 15: its copy.
	next := withOrigin(t, flowMessages(t, 0, 14, 1, 3, t0), producer, 11)[0]
	msgs = append(msgs, next, resend(next, 15))
	// Another partition: the same sequence numbers from another producer
	// (a restarted collector) are new batches.
	other := withOrigin(t, flowMessages(t, 1, 0, 3, 2, t0), 0xbeef, 1)
	msgs = append(msgs, other...)
	// Partition 2: a batch of an older collector (no identity) and its copy.
	legacy := flowMessages(t, 2, 0, 1, 2, t0)[0]
	msgs = append(msgs, legacy, resend(legacy, 1))

	for _, tc := range []struct {
		name    string
		maxRows int
	}{
		{"copies in the same insert as their original", 1000},
		{"copies in later inserts", 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemFlows()
			m := NewMetrics(nil)
			c := &commits{}
			if err := runPipelineMetrics(t, testConfig(tc.maxRows), st, &memDead{}, c, msgs, m); err != nil {
				t.Fatal(err)
			}
			// 11 batches x 3 + 3 x 2 on partition 1 + the legacy batch twice.
			if want := 11*3 + 3*2 + 2*2; len(st.stored) != want {
				t.Errorf("%d rows stored, want %d", len(st.stored), want)
			}
			if got := st.copies(); got != 2 {
				t.Errorf("%d rows stored twice, want 2 (the legacy batch's, never deduplicated)", got)
			}
			if got := testutil.ToFloat64(m.DuplicateBatches); got != 5 {
				t.Errorf("duplicate_batches_total = %v, want 5", got)
			}
			if got := testutil.ToFloat64(m.DuplicateFlows); got != 15 {
				t.Errorf("duplicate_flows_total = %v, want 15", got)
			}
			if c.last[0] != 16 || c.last[1] != 3 || c.last[2] != 2 {
				t.Errorf("committed %v, want 0:16 1:3 2:2 (copies' offsets committed too)", c.last)
			}
		})
	}
}

// TestPipelineResentAcrossRestart: the original was written and committed
// by an earlier run (or another sink) and the copy arrives after the
// partition is assigned again: the in-memory window is empty, the replay
// check finds the copy's rows stored from another offset by batch identity.
func TestPipelineResentAcrossRestart(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	orig := withOrigin(t, flowMessages(t, 0, 0, 10, 3, t0), 0xfeed, 1)
	st := newMemFlows()
	c := &commits{}
	if err := runPipeline(t, testConfig(100), st, &memDead{}, c, orig); err != nil {
		t.Fatal(err)
	}
	// Restart from offset 10: new batches, and copies of 7 and 8.
	fresh := withOrigin(t, flowMessages(t, 0, 10, 3, 3, t0.Add(time.Minute)), 0xfeed, 11)
	replay := []Message{fresh[0], resend(orig[7], 11), fresh[1], resend(orig[8], 13), fresh[2]}
	for i := range replay {
		replay[i].Offset = int64(10 + i)
	}
	m := NewMetrics(nil)
	if err := runPipelineMetrics(t, testConfig(100), st, &memDead{}, c, replay, m); err != nil {
		t.Fatal(err)
	}
	if got, want := len(st.stored), 13*3; got != want {
		t.Errorf("%d rows stored, want %d", got, want)
	}
	if got := st.copies(); got != 0 {
		t.Errorf("%d rows stored twice", got)
	}
	if st.heldBatches == 0 {
		t.Error("the replay check did not ask about batch identities")
	}
	if got := testutil.ToFloat64(m.DuplicateFlows); got != 6 {
		t.Errorf("duplicate_flows_total = %v, want 6", got)
	}
	if got := testutil.ToFloat64(m.ReplaySkipped.WithLabelValues("flows")); got != 0 {
		t.Errorf("replay_skipped_rows_total = %v, want 0 (copies are not replays)", got)
	}
	if c.last[0] != 15 {
		t.Errorf("committed %v, want 15", c.last)
	}
}
