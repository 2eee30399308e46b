package engine

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the engine's Prometheus series.
type Metrics struct {
	Folded    prometheus.Counter
	Dropped   *prometheus.CounterVec // reason
	Targets   prometheus.Gauge
	Events    *prometheus.CounterVec // class, kind
	Windows   *prometheus.CounterVec // outcome: closed, skipped
	Watermark *prometheus.GaugeVec   // partition
	Snapshots prometheus.Counter
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Folded: prometheus.NewCounter(prometheus.CounterOpts{Name: "detector_flows_folded_total",
			Help: "Flows folded into window state."}),
		Dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "detector_flows_dropped_total",
			Help: "Flows not folded, by reason (late, no_subnet, no_direction, no_time, allowlisted)."}, []string{"reason"}),
		Targets: prometheus.NewGauge(prometheus.GaugeOpts{Name: "detector_targets_tracked",
			Help: "Subnet+direction targets with a baseline in memory."}),
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "detector_events_total",
			Help: "Anomaly events emitted, by class and kind."}, []string{"class", "kind"}),
		Windows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "detector_windows_total",
			Help: "Evaluation windows closed, skipped over an event-time gap, or withheld as a benign surge (flash crowd)."}, []string{"outcome"}),
		Watermark: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "detector_watermark_seconds",
			Help: "Event time (Unix seconds) up to which windows are closed, per flows partition."}, []string{"partition"}),
		Snapshots: prometheus.NewCounter(prometheus.CounterOpts{Name: "detector_snapshots_total",
			Help: "Baseline snapshots emitted."}),
	}
	reg.MustRegister(m.Folded, m.Dropped, m.Targets, m.Events, m.Windows, m.Watermark, m.Snapshots)
	return m
}
