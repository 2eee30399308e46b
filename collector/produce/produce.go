// Package produce batches normalised flows into FlowBatch Kafka messages,
// one batch per partition (every flow of a batch hashes, by subnet key, to
// the batch's partition; the key is the subnet of the batch's first flow),
// buffers them in a bounded queue and writes them to Kafka.
//
// The UDP read loops call Batcher.Flow; nothing there ever blocks on
// Kafka: when the queue is full the batch is dropped and its flows
// counted. Senders retry transient Kafka errors (broker down, leader
// moving) for as long as it takes, so while Kafka is away the queue is the
// buffer, up to buffer_bytes.
//
// A retry after a lost acknowledgement writes a batch Kafka already stored
// (kafka-go has no idempotent producer). Each batch therefore carries the
// producer's random id and a sequence number assigned when it is sealed;
// a retry sends the same bytes, so consumers recognise the copy
// (schemas/dedup) and delivery is exactly once end to end.
package produce

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/packetworks/flowsentry/schemas/topics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// Message is one Kafka message: an encoded FlowBatch for one partition.
type Message struct {
	Partition int
	Key       []byte
	Value     []byte
	Flows     int
	Created   time.Time
}

// Writer is the boundary to Kafka.
type Writer interface {
	// Write delivers msgs. On partial failure it returns kafka.WriteErrors
	// (one entry per message, nil for delivered ones).
	Write(ctx context.Context, msgs []*Message) error
	// Partitions returns the topic's partition count.
	Partitions(ctx context.Context) (int, error)
	Close() error
}

// Config tunes batching and buffering.
type Config struct {
	Collector   string        // FlowBatch.collector
	BatchBytes  int           // flush a partition's batch at this size
	Linger      time.Duration // ...or when its first flow is this old
	BufferBytes int64         // queue bound; beyond it batches are dropped
	Senders     int           // concurrent Kafka writes
	// Partitions is used until the broker tells the real count.
	Partitions int
	// RetryBackoff is the wait after a transient write error (doubling,
	// up to 10 times this).
	RetryBackoff time.Duration
	// ProducerID is FlowBatch.producer_id; 0 (the default) draws a random
	// one, so that a restarted collector never reuses its sequences' id.
	ProducerID uint64
}

// Metrics of the producer.
type Metrics struct {
	queueBytes, queueFlows prometheus.Gauge
	partitions             prometheus.Gauge
	dropped                *prometheus.CounterVec
	droppedQueue           prometheus.Counter
	droppedKafka           prometheus.Counter
	produced, batches      prometheus.Counter
	errors                 prometheus.Counter
	latency                prometheus.Histogram
}

// NewMetrics registers the producer metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		queueBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: "collector_produce_backlog_bytes",
			Help: "Encoded FlowBatch bytes waiting for Kafka."}),
		queueFlows: prometheus.NewGauge(prometheus.GaugeOpts{Name: "collector_produce_backlog_flows",
			Help: "Flows waiting for Kafka."}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "collector_produce_partitions",
			Help: "Partition count of the flows topic in use."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "collector_flows_dropped_total",
			Help: "Flows dropped after decoding: queue (backlog full) or kafka (permanent write error)."}, []string{"reason"}),
		produced: prometheus.NewCounter(prometheus.CounterOpts{Name: "collector_flows_produced_total",
			Help: "Flows acknowledged by Kafka."}),
		batches: prometheus.NewCounter(prometheus.CounterOpts{Name: "collector_batches_produced_total",
			Help: "FlowBatch messages acknowledged by Kafka."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "collector_produce_errors_total",
			Help: "Kafka write attempts that failed (retried when transient)."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "collector_produce_lag_seconds",
			Help:    "Time from a batch's first flow to Kafka's acknowledgement.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300}}),
	}
	m.droppedQueue = m.dropped.WithLabelValues("queue")
	m.droppedKafka = m.dropped.WithLabelValues("kafka")
	if reg != nil {
		reg.MustRegister(m.queueBytes, m.queueFlows, m.partitions, m.dropped, m.produced, m.batches, m.errors, m.latency)
	}
	return m
}

// Producer owns the queue and the senders.
type Producer struct {
	cfg   Config
	w     Writer
	m     *Metrics
	log   *slog.Logger
	queue chan *Message
	id    uint64        // FlowBatch.producer_id
	seq   atomic.Uint64 // last FlowBatch.sequence assigned

	queued     atomic.Int64 // bytes
	queuedFl   atomic.Int64
	partitions atomic.Int64
	lastErr    atomic.Pointer[error]
	bufs       sync.Pool
	closing    chan struct{}
	wg         sync.WaitGroup
}

// New returns a producer writing through w.
func New(cfg Config, w Writer, m *Metrics, log *slog.Logger) *Producer {
	if cfg.BatchBytes <= 0 {
		cfg.BatchBytes = 128 << 10
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 200 * time.Millisecond
	}
	if cfg.BufferBytes <= 0 {
		cfg.BufferBytes = 256 << 20
	}
	if cfg.Senders <= 0 {
		cfg.Senders = 2
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 8
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 200 * time.Millisecond
	}
	n := cfg.BufferBytes / int64(cfg.BatchBytes/8+1)
	n = max(64, min(n, 1<<16))
	p := &Producer{cfg: cfg, w: w, m: m, log: log, queue: make(chan *Message, n), closing: make(chan struct{}),
		id: cfg.ProducerID}
	if p.id == 0 {
		p.id = randomID()
	}
	p.bufs.New = func() any { b := make([]byte, 0, cfg.BatchBytes+4096); return &b }
	p.partitions.Store(int64(cfg.Partitions))
	m.partitions.Set(float64(cfg.Partitions))
	return p
}

// randomID is a non-zero random 64-bit producer id: two collectors (or two
// runs of one) share an id with probability 2^-64 per pair.
func randomID() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		if id := binary.LittleEndian.Uint64(b[:]); id != 0 {
			return id
		}
	}
}

// ID is the producer id written into every batch.
func (p *Producer) ID() uint64 { return p.id }

// Sequence is the last sequence number assigned to a batch.
func (p *Producer) Sequence() uint64 { return p.seq.Load() }

// Partitions is the partition count batches are built for.
func (p *Producer) Partitions() int { return int(p.partitions.Load()) }

// SetPartitions changes the partition count; batchers flush what they
// built for the old count and rebuild (partition counts only grow).
func (p *Producer) SetPartitions(n int) {
	if n > 0 && int64(n) != p.partitions.Swap(int64(n)) {
		p.m.partitions.Set(float64(n))
		p.log.Info("flows topic partition count", "partitions", n)
	}
}

// RefreshPartitions asks the broker for the partition count now and then
// every interval until ctx ends.
func (p *Producer) RefreshPartitions(ctx context.Context, interval time.Duration) {
	for {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := p.w.Partitions(c)
		cancel()
		if err != nil {
			p.log.Warn("flows topic metadata", "err", err)
		} else {
			p.SetPartitions(n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// Backlog returns the queued bytes and flows.
func (p *Producer) Backlog() (bytes, flows int64) { return p.queued.Load(), p.queuedFl.Load() }

// Healthy is the readiness check: the last write attempt succeeded.
func (p *Producer) Healthy() error {
	if e := p.lastErr.Load(); e != nil && *e != nil {
		return *e
	}
	return nil
}

func (p *Producer) enqueue(m *Message) {
	size := int64(len(m.Value))
	if p.queued.Load()+size > p.cfg.BufferBytes {
		p.drop(m, p.m.droppedQueue)
		return
	}
	select {
	case p.queue <- m:
		p.queued.Add(size)
		p.queuedFl.Add(int64(m.Flows))
		p.m.queueBytes.Add(float64(size))
		p.m.queueFlows.Add(float64(m.Flows))
	default:
		p.drop(m, p.m.droppedQueue)
	}
}

func (p *Producer) drop(m *Message, c prometheus.Counter) {
	c.Add(float64(m.Flows))
	p.release(m)
}

func (p *Producer) release(m *Message) {
	b := m.Value[:0]
	m.Value = nil
	p.bufs.Put(&b)
}

// Run starts the senders and blocks until ctx ends and the queue is
// drained (or drainTimeout passes; what is left is counted as dropped).
func (p *Producer) Run(ctx context.Context, drainTimeout time.Duration) {
	sendCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p.log.Info("producing", "producer_id", fmt.Sprintf("%016x", p.id), "senders", p.cfg.Senders)
	for i := 0; i < p.cfg.Senders; i++ {
		p.wg.Add(1)
		go p.sender(sendCtx)
	}
	<-ctx.Done()
	close(p.closing)
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainTimeout):
		cancel()
		<-done
	}
	for {
		select {
		case m := <-p.queue:
			p.dequeued(m)
			p.drop(m, p.m.droppedQueue)
		default:
			return
		}
	}
}

func (p *Producer) dequeued(m *Message) {
	p.queued.Add(-int64(len(m.Value)))
	p.queuedFl.Add(-int64(m.Flows))
	p.m.queueBytes.Sub(float64(len(m.Value)))
	p.m.queueFlows.Sub(float64(m.Flows))
}

const maxWrite = 64 // messages per Kafka write call

func (p *Producer) sender(ctx context.Context) {
	defer p.wg.Done()
	msgs := make([]*Message, 0, maxWrite)
	for {
		msgs = msgs[:0]
		select {
		case m := <-p.queue:
			msgs = append(msgs, m)
		case <-p.closing:
			// Drain what is queued, then stop.
			select {
			case m := <-p.queue:
				msgs = append(msgs, m)
			default:
				return
			}
		case <-ctx.Done():
			return
		}
	more:
		for len(msgs) < maxWrite {
			select {
			case m := <-p.queue:
				msgs = append(msgs, m)
			default:
				break more
			}
		}
		p.send(ctx, msgs)
	}
}

// send writes msgs, retrying transient errors; messages stay counted in
// the backlog until they are delivered or dropped.
func (p *Producer) send(ctx context.Context, msgs []*Message) {
	backoff := p.cfg.RetryBackoff
	for len(msgs) > 0 {
		err := p.w.Write(ctx, msgs)
		p.lastErr.Store(&err)
		var retry []*Message
		var werrs kafka.WriteErrors
		isWE := errors.As(err, &werrs) && len(werrs) == len(msgs)
		for i, m := range msgs {
			e := err
			if isWE {
				e = werrs[i]
			}
			switch {
			case e == nil:
				p.dequeued(m)
				p.m.produced.Add(float64(m.Flows))
				p.m.batches.Inc()
				p.m.latency.Observe(time.Since(m.Created).Seconds())
				p.release(m)
			case transient(e) && ctx.Err() == nil:
				retry = append(retry, m)
			default:
				p.dequeued(m)
				p.drop(m, p.m.droppedKafka)
			}
		}
		if err != nil {
			p.m.errors.Inc()
			p.log.Warn("kafka write failed", "err", err, "messages", len(msgs), "retrying", len(retry))
		}
		if len(retry) == 0 {
			return
		}
		msgs = retry
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*p.cfg.RetryBackoff)
	}
}

// transient reports whether a write error may go away by itself (broker
// down or restarting, leader election, timeouts). Others (message too
// large, authorisation, unknown topic) drop the batch.
func transient(err error) bool {
	var ke kafka.Error
	if errors.As(err, &ke) {
		return ke.Temporary() || ke == kafka.UnknownTopicOrPartition || ke == kafka.LeaderNotAvailable
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// io.EOF, connection refused/reset and other plain errors: a broker
	// that went away. Retrying is the safe side; the bound is the queue.
	return true
}

// Batcher builds per-partition batches for one read loop. Not safe for
// concurrent use.
type Batcher struct {
	p       *Producer
	n       int
	parts   []part
	scratch []byte
	pending int // partitions holding flows
}

type part struct {
	buf     *[]byte
	key     string
	flows   int
	created time.Time
}

// NewBatcher returns a batcher feeding p.
func (p *Producer) NewBatcher() *Batcher {
	b := &Batcher{p: p, scratch: make([]byte, 0, 512)}
	b.resize()
	return b
}

func (b *Batcher) resize() {
	b.FlushAll()
	b.n = b.p.Partitions()
	b.parts = make([]part, b.n)
}

// Flow appends f to its partition's batch (implements normalise.Sink).
func (b *Batcher) Flow(f *pb.Flow) {
	if n := b.p.Partitions(); n != b.n {
		b.resize()
	}
	k := topics.Partition(unsafe.Slice(unsafe.StringData(f.Subnet), len(f.Subnet)), b.n)
	pt := &b.parts[k]
	if pt.buf == nil {
		pt.buf = b.p.bufs.Get().(*[]byte)
		pt.key, pt.created = f.Subnet, time.Now()
		b.pending++
	}
	*pt.buf, b.scratch = appendBatchFlow(*pt.buf, b.scratch, f)
	pt.flows++
	if len(*pt.buf) >= b.p.cfg.BatchBytes {
		b.flush(k)
	}
}

func (b *Batcher) flush(k int) {
	pt := &b.parts[k]
	if pt.buf == nil {
		return
	}
	// The sequence is fixed here, in the bytes: every retry of this batch
	// sends the same (producer_id, sequence). One counter for all
	// partitions and batchers keeps (producer, sequence) unique even if the
	// balancer has to send the batch elsewhere than partition k.
	seq := b.p.seq.Add(1)
	m := &Message{Partition: k, Key: []byte(pt.key), Value: finishBatch(*pt.buf, b.p.cfg.Collector, b.p.id, seq),
		Flows: pt.flows, Created: pt.created}
	*pt = part{}
	b.pending--
	b.p.enqueue(m)
}

// FlushOld flushes batches whose first flow is older than the linger time.
func (b *Batcher) FlushOld(now time.Time) {
	if b.pending == 0 {
		return
	}
	for k := range b.parts {
		if b.parts[k].buf != nil && now.Sub(b.parts[k].created) >= b.p.cfg.Linger {
			b.flush(k)
		}
	}
}

// FlushAll flushes every batch.
func (b *Batcher) FlushAll() {
	for k := range b.parts {
		b.flush(k)
	}
}

// Pending reports whether the batcher holds unflushed flows.
func (b *Batcher) Pending() bool { return b.pending > 0 }

// Linger is the configured linger time.
func (b *Batcher) Linger() time.Duration { return b.p.cfg.Linger }
