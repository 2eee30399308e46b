package dispatch

import (
	"github.com/packetworks/flowsentry/alerter/incident"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	events        *prometheus.CounterVec
	notifications *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	deadLetters   *prometheus.CounterVec
	restored      prometheus.Counter
	saveErrors    prometheus.Counter
	saveSeconds   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, e *Engine) metrics {
	m := metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowsentry_alerter_events_total",
			Help: "Anomaly events applied, by result (opened, updated, escalated, resolved, duplicate, late, invalid, timeout)."},
			[]string{"result"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowsentry_alerter_notifications_total",
			Help: "Notification attempts and decisions by receiver, kind and outcome (delivered, retry, failed, interrupted, silenced, inhibited, skipped, not_sent)."},
			[]string{"receiver", "kind", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "flowsentry_alerter_delivery_latency_seconds",
			Help:    "From the event that opened, escalated or resolved an incident to its delivery (includes group_wait).",
			Buckets: []float64{0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800}}, []string{"receiver"}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowsentry_alerter_dead_letters_total",
			Help: "Deliveries given up after retries."}, []string{"receiver"}),
		restored: prometheus.NewCounter(prometheus.CounterOpts{Name: "flowsentry_alerter_incidents_restored_total",
			Help: "Incidents rebuilt from the state file at start."}),
		saveErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "flowsentry_alerter_state_save_errors_total",
			Help: "Failed writes of the state file (offsets are not committed meanwhile)."}),
		saveSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "flowsentry_alerter_state_save_seconds",
			Help: "Time to write the state file.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8)}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.events, m.notifications, m.latency, m.deadLetters, m.restored, m.saveErrors, m.saveSeconds)
	depth := prometheus.NewDesc("flowsentry_alerter_queue_depth", "Deliveries queued or in flight per receiver.", []string{"receiver"}, nil)
	open := prometheus.NewDesc("flowsentry_alerter_incidents", "Incidents held, by state.", []string{"state"}, nil)
	pending := prometheus.NewDesc("flowsentry_alerter_pending_events", "Events whose notifications are not settled yet (their offsets wait).", nil, nil)
	groups := prometheus.NewDesc("flowsentry_alerter_groups", "Aggregation groups.", nil, nil)
	reg.MustRegister(collector{descs: []*prometheus.Desc{depth, open, pending, groups}, collect: func(ch chan<- prometheus.Metric) {
		for name, q := range e.queues {
			ch <- prometheus.MustNewConstMetric(depth, prometheus.GaugeValue, float64(q.depth()), name)
		}
		e.mu.Lock()
		counts := map[incident.State]int{incident.Open: 0, incident.Resolved: 0}
		for _, in := range e.tracker.All() {
			counts[in.State]++
		}
		n := 0
		for _, ts := range e.tickets {
			n += len(ts)
		}
		g := len(e.groups)
		e.mu.Unlock()
		for s, c := range counts {
			ch <- prometheus.MustNewConstMetric(open, prometheus.GaugeValue, float64(c), string(s))
		}
		ch <- prometheus.MustNewConstMetric(pending, prometheus.GaugeValue, float64(n))
		ch <- prometheus.MustNewConstMetric(groups, prometheus.GaugeValue, float64(g))
	}})
	return m
}

type collector struct {
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}
func (c collector) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
