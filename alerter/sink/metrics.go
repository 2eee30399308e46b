package sink

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the sink's Prometheus series.
type Metrics struct {
	Rows           *prometheus.CounterVec   // rows written, by table (rate() = rows/s)
	BatchRows      *prometheus.HistogramVec // rows per insert
	InsertSeconds  *prometheus.HistogramVec // one INSERT
	FlushSeconds   *prometheus.HistogramVec // insert + dead letters + commit, retries included
	BatchAge       *prometheus.HistogramVec // first message of a batch to its commit
	Retries        *prometheus.CounterVec   // failed inserts retried, by table
	DeadLetters    *prometheus.CounterVec   // by source topic
	ReplaySkipped  *prometheus.CounterVec   // rows not inserted because ClickHouse held them
	ReplayReused   *prometheus.CounterVec   // rows inserted although their Kafka position was held with other content
	RollupRepaired *prometheus.CounterVec   // rollup cells short of their source, completed, by rollup table
	RollupOver     *prometheus.CounterVec   // rollup cells holding more than their source, by rollup table
	// Re-sent FlowBatch copies (same producer and sequence) not written:
	// batches dropped by the in-memory window, flows by it or by the
	// replay check (a copy of a batch stored before the assignment).
	DuplicateBatches prometheus.Counter
	DuplicateFlows   prometheus.Counter
	DedupTooOld      prometheus.Counter     // batches below the dedup window: written, may be copies
	Lag              *prometheus.GaugeVec   // messages behind, by topic and partition
	ClickHouseUp     prometheus.Gauge       // 0 while inserts fail
	Retention        *prometheus.CounterVec // partitions dropped, by table
	RetentionErr     *prometheus.CounterVec
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns, sub = "flowsentry", "sink"
	m := &Metrics{
		Rows: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "rows_total",
			Help: "Rows inserted into ClickHouse."}, []string{"table"}),
		BatchRows: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_rows",
			Help: "Rows per batch insert.", Buckets: prometheus.ExponentialBuckets(1, 4, 11)}, []string{"table"}),
		InsertSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "insert_seconds",
			Help: "Duration of one ClickHouse INSERT.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12)}, []string{"table"}),
		FlushSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "flush_seconds",
			Help: "Insert, dead letters and offset commit of one batch, retries included.", Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14)}, []string{"table"}),
		BatchAge: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_age_seconds",
			Help: "From a batch's first message to its commit.", Buckets: prometheus.ExponentialBuckets(0.01, 2.5, 12)}, []string{"table"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "insert_retries_total",
			Help: "Inserts that failed and were retried."}, []string{"table"}),
		DeadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dead_letters_total",
			Help: "Records written to the dead-letter topic."}, []string{"topic"}),
		ReplaySkipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "replay_skipped_rows_total",
			Help: "Replayed rows not inserted because ClickHouse already held them."}, []string{"table"}),
		ReplayReused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "replay_reused_positions_total",
			Help: "Replayed rows inserted although ClickHouse held their Kafka position with other content (topic recreated)."}, []string{"table"}),
		RollupRepaired: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "rollup_repaired_cells_total",
			Help: "Rollup cells found short of their source after a replay and completed."}, []string{"table"}),
		RollupOver: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "rollup_over_cells_total",
			Help: "Rollup cells found holding more than their source (not repairable by the sink)."}, []string{"table"}),
		DuplicateBatches: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "duplicate_batches_total",
			Help: "FlowBatch messages dropped as copies re-sent by their producer (same producer id and sequence as one read before)."}),
		DuplicateFlows: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "duplicate_flows_total",
			Help: "Flows of re-sent FlowBatch copies not written (dropped in memory, or found stored from another offset by the replay check)."}),
		DedupTooOld: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dedup_too_old_batches_total",
			Help: "FlowBatch messages whose sequence was below the dedup window: written, though they may be copies (raise consumer.dedup.window)."}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "consumer_lag",
			Help: "Messages between the partition's end and the sink's committed offset."}, []string{"topic", "partition"}),
		ClickHouseUp: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "clickhouse_up",
			Help: "1 when the last insert succeeded, 0 while inserts fail."}),
		Retention: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "retention_dropped_partitions_total",
			Help: "Partitions dropped by retention."}, []string{"table"}),
		RetentionErr: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "retention_errors_total",
			Help: "Retention runs that failed for a table."}, []string{"table"}),
	}
	if reg != nil {
		reg.MustRegister(m.Rows, m.BatchRows, m.InsertSeconds, m.FlushSeconds, m.BatchAge, m.Retries, m.DeadLetters,
			m.ReplaySkipped, m.ReplayReused, m.RollupRepaired, m.RollupOver, m.DuplicateBatches, m.DuplicateFlows, m.DedupTooOld, m.Lag, m.ClickHouseUp, m.Retention, m.RetentionErr)
	}
	m.ClickHouseUp.Set(1)
	return m
}

// offsets is the committed position per topic and partition, shared by the
// pipelines (writers) and the lag reporter (reader).
type offsets struct {
	mu sync.Mutex
	m  map[string]map[int]int64
}

func newOffsets() *offsets { return &offsets{m: map[string]map[int]int64{}} }

func (o *offsets) set(topic string, partition int, next int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m[topic] == nil {
		o.m[topic] = map[int]int64{}
	}
	o.m[topic][partition] = next
}

func (o *offsets) get(topic string, partition int) (int64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	v, ok := o.m[topic][partition]
	return v, ok
}

func (o *offsets) clear() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.m = map[string]map[int]int64{}
}
