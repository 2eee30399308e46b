package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/packetworks/flowsentry/detector/checkpoint"
	"github.com/packetworks/flowsentry/detector/engine"
	"github.com/packetworks/flowsentry/schemas/dedup"
	"github.com/packetworks/flowsentry/schemas/kafkaclient"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/packetworks/flowsentry/schemas/topics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
)

// Worker is one detector instance: one consumer group member.
type Worker struct {
	cfg       Config
	brokers   []string
	dialer    *kafka.Dialer
	transport *kafka.Transport
	log       *slog.Logger
	m         *Metrics

	mu    sync.Mutex // guards eng, owned, next
	eng   *engine.Engine
	owned map[int]bool
	next  map[int]int64 // offset to commit per flows partition

	flowParts int
	pub       chan pubItem
	events    *kafka.Writer
	snaps     *kafka.Writer
	state     *kafka.Writer

	ready          atomic.Bool
	abort          atomic.Bool
	lastCheckpoint atomic.Int64 // unix ns
	group          atomic.Pointer[kafka.ConsumerGroup]
	pubDone        chan struct{}
}

// New builds a worker; build makes the engine around the worker's sink.
func New(cfg Config, kcfg kafkaclient.Config, log *slog.Logger, reg prometheus.Registerer,
	build func(engine.Sink) (*engine.Engine, error)) (*Worker, error) {
	if err := errors.Join(cfg.Validate("worker"), kcfg.Validate("kafka")); err != nil {
		return nil, err
	}
	sec, err := kcfg.Resolve("kafka")
	if err != nil {
		return nil, err
	}
	w := &Worker{cfg: cfg, brokers: kcfg.Brokers, dialer: sec.Dialer(kcfg.ClientID), transport: sec.Transport(kcfg.ClientID),
		log: log, owned: map[int]bool{}, next: map[int]int64{}, pub: make(chan pubItem, 10000), pubDone: make(chan struct{})}
	w.lastCheckpoint.Store(time.Now().UnixNano())
	w.m = newMetrics(reg, func() float64 { return time.Since(time.Unix(0, w.lastCheckpoint.Load())).Seconds() })
	newWriter := func(topic string, b kafka.Balancer) *kafka.Writer {
		return &kafka.Writer{Addr: kafka.TCP(kcfg.Brokers...), Topic: topic, Balancer: b, Transport: w.transport,
			RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond, BatchSize: 1000, MaxAttempts: 3}
	}
	w.events = newWriter(cfg.Topics.Anomalies, &kafka.Murmur2Balancer{})
	w.snaps = newWriter(cfg.Topics.Baselines, &kafka.Murmur2Balancer{})
	w.state = newWriter(cfg.Topics.State, checkpoint.Balancer{})
	if w.eng, err = build(w); err != nil {
		return nil, err
	}
	return w, nil
}

// Ready reports an error until the worker has joined its group and
// restored the state of its partitions (for /readyz).
func (w *Worker) Ready() error {
	if !w.ready.Load() {
		return errors.New("not yet assigned partitions and restored state")
	}
	return nil
}

// Kill stops the worker like a crash would, as far as the state is
// concerned: no final checkpoint or commit (tests of recovery).
func (w *Worker) Kill() {
	w.abort.Store(true)
	if g := w.group.Load(); g != nil {
		g.Close()
	}
}

// Engine runs f with the engine locked (tests, diagnostics).
func (w *Worker) Engine(f func(*engine.Engine)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f(w.eng)
}

// partitionCounts checks that flows and state have as many partitions:
// the owner of flows partition p restores from state partition p.
func (w *Worker) partitionCounts(ctx context.Context) error {
	client := &kafka.Client{Addr: kafka.TCP(w.brokers...), Transport: w.transport, Timeout: 20 * time.Second}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{w.cfg.Topics.Flows, w.cfg.Topics.State}})
	if err != nil {
		return fmt.Errorf("worker: metadata: %w", err)
	}
	n := map[string]int{}
	for _, t := range md.Topics {
		if t.Error != nil {
			return fmt.Errorf("worker: topic %s: %w", t.Name, t.Error)
		}
		n[t.Name] = len(t.Partitions)
	}
	if n[w.cfg.Topics.Flows] == 0 || n[w.cfg.Topics.Flows] != n[w.cfg.Topics.State] {
		return fmt.Errorf("worker.topics: %s has %d partitions and %s %d; they must be equal and > 0",
			w.cfg.Topics.Flows, n[w.cfg.Topics.Flows], w.cfg.Topics.State, n[w.cfg.Topics.State])
	}
	w.flowParts = n[w.cfg.Topics.Flows]
	return nil
}

// Run consumes until ctx ends or Kill; it returns nil on a clean stop.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.partitionCounts(ctx); err != nil {
		return err
	}
	start := kafka.LastOffset
	if w.cfg.StartOffset == "first" {
		start = kafka.FirstOffset
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: w.cfg.Group, Brokers: w.brokers, Dialer: w.dialer, Topics: []string{w.cfg.Topics.Flows},
		HeartbeatInterval: time.Duration(w.cfg.HeartbeatSeconds) * time.Second,
		SessionTimeout:    time.Duration(w.cfg.SessionTimeoutSeconds) * time.Second,
		RebalanceTimeout:  time.Duration(w.cfg.SessionTimeoutSeconds) * time.Second,
		JoinGroupBackoff:  time.Second, StartOffset: start, Timeout: 10 * time.Second,
	})
	if err != nil {
		return fmt.Errorf("worker: consumer group: %w", err)
	}
	w.group.Store(group)
	pubCtx, stopPub := context.WithCancel(context.Background())
	go w.publisher(pubCtx)
	defer func() {
		group.Close()
		if !w.abort.Load() {
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := w.flush(fctx); err != nil {
				w.log.Error("events not all published at stop", "err", err)
			}
			cancel()
		}
		stopPub()
		<-w.pubDone
		w.events.Close()
		w.snaps.Close()
		w.state.Close()
	}()
	go func() {
		<-ctx.Done()
		group.Close()
	}()
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return nil
			}
			w.log.Warn("consumer group", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		w.m.Rebalances.Inc()
		if err := w.assign(ctx, gen); err != nil {
			if ctx.Err() != nil || w.abort.Load() {
				return nil
			}
			return err
		}
	}
}

func (w *Worker) assign(ctx context.Context, gen *kafka.Generation) error {
	assigned := map[int]int64{}
	for _, a := range gen.Assignments[w.cfg.Topics.Flows] {
		assigned[a.ID] = a.Offset
	}
	w.mu.Lock()
	for p := range w.owned {
		if _, ok := assigned[p]; !ok {
			w.eng.Drop(int32(p))
			delete(w.owned, p)
			delete(w.next, p)
		}
	}
	var fresh []int
	for p := range assigned {
		if !w.owned[p] {
			fresh = append(fresh, p)
		}
	}
	w.mu.Unlock()
	slices.Sort(fresh)
	// State first: a partition's flows must meet its learned baselines.
	for _, p := range fresh {
		t0 := time.Now()
		n, bad, err := checkpoint.Load(ctx, w.brokers, w.dialer, w.transport, w.cfg.Topics.State, p,
			func(key string, value []byte) error {
				w.mu.Lock()
				defer w.mu.Unlock()
				return w.eng.Restore(int32(p), key, value)
			})
		if err != nil {
			return fmt.Errorf("worker: restoring partition %d: %w", p, err)
		}
		w.m.Restored.WithLabelValues("ok").Add(float64(n - bad))
		w.m.Restored.WithLabelValues("corrupt").Add(float64(bad))
		w.log.Info("restored state", "partition", p, "records", n, "corrupt", bad, "took", time.Since(t0).String())
		w.mu.Lock()
		w.owned[p] = true
		w.mu.Unlock()
	}
	w.mu.Lock()
	for p := range assigned {
		// Idle timeouts count from now, not from the state restore.
		w.eng.Assign(int32(p))
	}
	w.mu.Unlock()
	w.m.Partitions.Set(float64(len(assigned)))
	w.log.Info("generation", "id", gen.ID, "partitions", slices.Sorted(maps.Keys(assigned)))
	w.ready.Store(true)
	for p, off := range assigned {
		gen.Start(func(ctx context.Context) { w.consume(ctx, gen, p, off) })
	}
	parts := slices.Collect(maps.Keys(assigned))
	gen.Start(func(ctx context.Context) {
		t := time.NewTicker(time.Duration(w.cfg.CheckpointSeconds) * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if w.abort.Load() {
					return
				}
				w.checkpoint(ctx, gen, parts)
			}
		}
	})
	return nil
}

func (w *Worker) consume(ctx context.Context, gen *kafka.Generation, p int, off int64) {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: w.brokers, Topic: w.cfg.Topics.Flows, Partition: p, Dialer: w.dialer,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: time.Duration(w.cfg.FetchMaxWaitMs) * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(off); err != nil {
		w.log.Error("set offset", "partition", p, "offset", off, "err", err)
		return
	}
	defer func() {
		if w.abort.Load() {
			return
		}
		// Revoked or stopping: hand over a fresh checkpoint. The
		// generation is ending but its coordinator connection still
		// accepts the commit.
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		w.checkpoint(cctx, gen, []int{p})
	}()
	batch := &pb.FlowBatch{}
	// This assignment's batches only: a window kept across generations
	// would judge by batches another owner may have read meanwhile. After
	// a restart or rebalance it starts empty, so a copy of a batch read
	// before it (at most the collector's in-flight batches) is folded again.
	win := dedup.NewWindow(w.cfg.Dedup)
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Error("fetch", "partition", p, "err", err)
			}
			return
		}
		w.handle(p, m, batch, win)
	}
}

// handle folds one message of flows partition p; a copy of a batch its
// producer re-sent after a lost acknowledgement is dropped before folding,
// or its flows would count twice in their window.
func (w *Worker) handle(p int, m kafka.Message, batch *pb.FlowBatch, win *dedup.Window) {
	if err := proto.Unmarshal(m.Value, batch); err != nil {
		w.m.Batches.WithLabelValues("invalid").Inc()
		w.log.Warn("invalid flow batch", "partition", p, "offset", m.Offset, "err", err)
		batch.Reset()
	} else {
		w.m.Batches.WithLabelValues("ok").Inc()
		switch win.Observe(p, dedup.Origin{Producer: batch.ProducerId, Sequence: batch.Sequence}) {
		case dedup.Duplicate:
			w.m.DuplicateBatches.Inc()
			w.m.DuplicateFlows.Add(float64(len(batch.Flows)))
			w.log.Debug("dropped a re-sent batch", "partition", p, "offset", m.Offset,
				"producer", fmt.Sprintf("%016x", batch.ProducerId), "sequence", batch.Sequence, "flows", len(batch.Flows))
			batch.Reset()
		case dedup.TooOld:
			w.m.DedupTooOld.Inc()
		}
		if len(batch.Flows) > 0 && topics.Partition([]byte(batch.Flows[0].GetSubnet()), w.flowParts) != p {
			w.m.Misrouted.Inc()
		}
	}
	w.mu.Lock()
	for _, f := range batch.Flows {
		w.eng.Fold(int32(p), f)
	}
	w.eng.Advance()
	w.next[p] = m.Offset + 1
	w.mu.Unlock()
}

// checkpoint writes the changed state of parts, waits until every event
// emitted so far is published, then commits the offsets those cover:
// after a crash, a new owner replays from the commit with state at least
// as new.
func (w *Worker) checkpoint(ctx context.Context, gen *kafka.Generation, parts []int) {
	p32 := make([]int32, len(parts))
	for i, p := range parts {
		p32[i] = int32(p)
	}
	w.mu.Lock()
	recs, err := w.eng.Checkpoint(p32)
	offs := map[int]int64{}
	for _, p := range parts {
		if o, ok := w.next[p]; ok {
			offs[p] = o
		}
	}
	w.mu.Unlock()
	if err == nil && len(recs) > 0 {
		err = w.state.WriteMessages(ctx, checkpoint.Messages(recs)...)
	}
	if err == nil {
		err = w.flush(ctx)
	}
	if err == nil && len(offs) > 0 {
		err = gen.CommitOffsets(map[string]map[int]int64{w.cfg.Topics.Flows: offs})
	}
	if err != nil {
		w.m.Checkpoints.WithLabelValues("error").Inc()
		w.log.Warn("checkpoint failed; will retry", "partitions", parts, "err", err)
		return
	}
	w.m.Checkpoints.WithLabelValues("ok").Inc()
	w.m.CheckpointRecs.Add(float64(len(recs)))
	w.lastCheckpoint.Store(time.Now().UnixNano())
}

// Partitions returns the flow partitions the worker owns.
func (w *Worker) Partitions() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Sorted(maps.Keys(w.owned))
}

// LastCheckpoint is the time of the last successful checkpoint.
func (w *Worker) LastCheckpoint() time.Time { return time.Unix(0, w.lastCheckpoint.Load()) }
