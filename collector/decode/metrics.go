package decode

import (
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
)

// Error reasons, the values of the "reason" label of decode errors.
const (
	ReasonShort       = "short"        // datagram too short for any header
	ReasonVersion     = "version"      // unknown protocol version
	ReasonMalformed   = "malformed"    // goflow2 refused the datagram
	ReasonPanic       = "panic"        // decoder panicked (recovered)
	ReasonTemplate    = "template"     // template we refuse (zero length, ...)
	ReasonTruncated   = "truncated"    // record runs past its set
	ReasonCount       = "count"        // record/sample count disagrees with the length
	ReasonPendingDrop = "pending_full" // data set without template, hold buffer full
)

// Metrics are the decoder's Prometheus metrics, labelled per exporter.
type Metrics struct {
	datagrams   *prometheus.CounterVec
	flows       *prometheus.CounterVec
	errors      *prometheus.CounterVec
	misses      *prometheus.CounterVec
	noRate      *prometheus.CounterVec
	timeFallbck *prometheus.CounterVec
	pendingExp  *prometheus.CounterVec
	lag         *prometheus.HistogramVec
}

// NewMetrics registers the decoder metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		datagrams: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "collector_datagrams_total",
			Help: "Datagrams received, by exporter and protocol (netflow5, netflow9, ipfix, sflow, unknown)."}, []string{"exporter", "protocol"}),
		flows: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "collector_flows_decoded_total",
			Help: "Flow records decoded, by exporter."}, []string{"exporter"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "collector_decode_errors_total",
			Help: "Datagrams or sets that failed to decode, by exporter and reason."}, []string{"exporter", "reason"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "collector_template_misses_total",
			Help: "Data sets that arrived before their template (held, then decoded or expired)."}, []string{"exporter"}),
		noRate: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "collector_flows_without_sampling_rate_total",
			Help: "Flows for which no sampling rate was known (neither announced nor configured)."}, []string{"exporter"}),
		timeFallbck: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "collector_flows_time_fallback_total",
			Help: "Flows whose start/end could not be computed from the record and got the receive time."}, []string{"exporter"}),
		pendingExp: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "collector_pending_sets_expired_total",
			Help: "Data sets dropped because their template never came."}, []string{"exporter"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "collector_flow_lag_seconds",
			Help:    "Receive time minus flow end time (exporter active timeout plus transit).",
			Buckets: []float64{0.1, 1, 5, 15, 30, 60, 120, 300, 900}}, []string{"exporter"}),
	}
	if reg != nil {
		reg.MustRegister(m.datagrams, m.flows, m.errors, m.misses, m.noRate, m.timeFallbck, m.pendingExp, m.lag)
	}
	return m
}

// exporterMetrics are the resolved children for one exporter, so the hot
// path never hashes label values.
type exporterMetrics struct {
	label                         string
	v5, v9, ipfix, sflow, unknown prometheus.Counter
	flows, misses, noRate, timeFb prometheus.Counter
	pendingExpired                prometheus.Counter
	lag                           prometheus.Observer
	errs                          map[string]prometheus.Counter
}

func (m *Metrics) exporter(addr netip.Addr, overflow bool) *exporterMetrics {
	l := addr.String()
	if overflow {
		l = "other"
	}
	em := &exporterMetrics{label: l,
		v5: m.datagrams.WithLabelValues(l, "netflow5"), v9: m.datagrams.WithLabelValues(l, "netflow9"),
		ipfix: m.datagrams.WithLabelValues(l, "ipfix"), sflow: m.datagrams.WithLabelValues(l, "sflow"),
		unknown: m.datagrams.WithLabelValues(l, "unknown"),
		flows:   m.flows.WithLabelValues(l), misses: m.misses.WithLabelValues(l),
		noRate: m.noRate.WithLabelValues(l), timeFb: m.timeFallbck.WithLabelValues(l),
		pendingExpired: m.pendingExp.WithLabelValues(l), lag: m.lag.WithLabelValues(l),
		errs: map[string]prometheus.Counter{}}
	for _, r := range []string{ReasonShort, ReasonVersion, ReasonMalformed, ReasonPanic, ReasonTemplate, ReasonTruncated, ReasonCount, ReasonPendingDrop} {
		em.errs[r] = m.errors.WithLabelValues(l, r)
	}
	return em
}
