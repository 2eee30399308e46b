// Package window folds flows into per-subnet, per-direction evaluation
// windows: counters in 1-second buckets plus the sketches that fingerprints
// and the scan/carpet-bombing classes need, and turns a closed window into
// Features (rates per second, shares, distinct counts, top items).
package window

// Metric indexes the per-window figures that baselines learn and classes
// score. Names are what configs (floors, ceilings) and snapshots use.
type Metric int

const (
	Bps Metric = iota
	Pps
	Flows
	PpsTCP
	PpsUDP
	PpsICMP
	PpsOther
	PpsSyn
	PpsFrag
	DistinctSrc
	DistinctDst
	DistinctDstPorts
	NumMetrics
)

var metricNames = [NumMetrics]string{"bps", "pps", "flows", "pps_tcp", "pps_udp", "pps_icmp", "pps_other",
	"pps_syn", "pps_frag", "distinct_src", "distinct_dst", "distinct_dst_ports"}

var metricUnits = [NumMetrics]string{"bps", "pps", "flows/s", "pps", "pps", "pps", "pps",
	"pps", "pps", "addresses", "addresses", "ports"}

func (m Metric) String() string {
	if m < 0 || m >= NumMetrics {
		return "unknown"
	}
	return metricNames[m]
}

// Unit is the unit of the metric's value.
func (m Metric) Unit() string {
	if m < 0 || m >= NumMetrics {
		return ""
	}
	return metricUnits[m]
}

// MetricByName returns the metric called name.
func MetricByName(name string) (Metric, bool) {
	for i, n := range metricNames {
		if n == name {
			return Metric(i), true
		}
	}
	return 0, false
}

// MetricNames lists every metric name in index order.
func MetricNames() []string { return metricNames[:] }

// Values holds one figure per metric.
type Values [NumMetrics]float64
