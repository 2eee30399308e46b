package worker

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the worker's Prometheus series.
type Metrics struct {
	Batches   *prometheus.CounterVec // outcome: ok, invalid
	Misrouted prometheus.Counter
	// Re-sent FlowBatch copies dropped before folding (schemas/dedup).
	DuplicateBatches prometheus.Counter
	DuplicateFlows   prometheus.Counter
	DedupTooOld      prometheus.Counter
	Published        *prometheus.CounterVec // topic
	PublishErrors    prometheus.Counter
	Checkpoints      *prometheus.CounterVec // outcome
	CheckpointRecs   prometheus.Counter
	CheckpointLag    prometheus.GaugeFunc
	Restored         *prometheus.CounterVec // outcome: ok, corrupt
	Partitions       prometheus.Gauge
	Rebalances       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, lag func() float64) *Metrics {
	m := &Metrics{
		Batches: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "detector_batches_total",
			Help: "Flow batches (Kafka messages) consumed, by outcome (ok, invalid)."}, []string{"outcome"}),
		Misrouted: prometheus.NewCounter(prometheus.CounterOpts{Name: "detector_batches_misrouted_total",
			Help: "Batches whose subnet does not hash to the partition they came on (a producer breaks the partitioning rule)."}),
		DuplicateBatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "detector_duplicate_batches_total",
			Help: "Flow batches dropped as copies re-sent by their producer (same producer id and sequence as one read before)."}),
		DuplicateFlows: prometheus.NewCounter(prometheus.CounterOpts{Name: "detector_duplicate_flows_total",
			Help: "Flows of re-sent batch copies, not folded."}),
		DedupTooOld: prometheus.NewCounter(prometheus.CounterOpts{Name: "detector_dedup_too_old_batches_total",
			Help: "Flow batches whose sequence was below the dedup window: folded, though they may be copies (raise worker.dedup.window)."}),
		Published: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "detector_published_total",
			Help: "Messages published, by topic."}, []string{"topic"}),
		PublishErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "detector_publish_errors_total",
			Help: "Failed publish attempts (retried)."}),
		Checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "detector_checkpoints_total",
			Help: "Checkpoints (state write + offset commit), by outcome."}, []string{"outcome"}),
		CheckpointRecs: prometheus.NewCounter(prometheus.CounterOpts{Name: "detector_checkpoint_records_total",
			Help: "Target state records written to the state topic."}),
		CheckpointLag: prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "detector_checkpoint_lag_seconds",
			Help: "Seconds since the last successful checkpoint."}, lag),
		Restored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "detector_state_restored_total",
			Help: "State records read on partition assignment, by outcome (ok, corrupt)."}, []string{"outcome"}),
		Partitions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "detector_partitions_owned",
			Help: "Flow partitions this worker owns."}),
		Rebalances: prometheus.NewCounter(prometheus.CounterOpts{Name: "detector_generations_total",
			Help: "Consumer group generations joined."}),
	}
	reg.MustRegister(m.Batches, m.Misrouted, m.DuplicateBatches, m.DuplicateFlows, m.DedupTooOld, m.Published, m.PublishErrors, m.Checkpoints, m.CheckpointRecs,
		m.CheckpointLag, m.Restored, m.Partitions, m.Rebalances)
	return m
}
