package rows

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/packetworks/flowsentry/schemas/pb"
	"google.golang.org/protobuf/encoding/protojson"
)

// Alert is one row of flowsentry.alerts (one anomaly event).
type Alert struct {
	IncidentID   string
	EventKind    int8
	EventSeq     uint32
	Customer     string
	Subnet       string
	Direction    int8
	Class        int8
	Severity     int8
	StartedAt    time.Time
	UpdatedAt    time.Time
	EndedAt      time.Time
	Metric, Unit string
	Observed     float64
	Expected     float64
	Score        float64
	PeakBps      uint64
	PeakPps      uint64
	TotalBytes   uint64
	TotalPackets uint64
	Fingerprint  string
	Reason       string
}

// AlertColumns is the column list of every alerts INSERT, in Alert's order.
const AlertColumns = "incident_id, event_kind, event_seq, customer, subnet, direction, class, severity, " +
	"started_at, updated_at, ended_at, metric, unit, observed, expected, score, peak_bps, peak_pps, " +
	"total_bytes, total_packets, fingerprint, reason"

// classes mirrors the Enum8 of alerts.class (0002_alerts.sql).
var classes = map[string]int8{"volumetric": 1, "syn_flood": 2, "udp_flood": 3, "icmp_flood": 4,
	"fragment_flood": 5, "amplification": 6, "carpet_bombing": 7, "scan": 8, "traffic_drop": 9}

// fingerprintJSON uses the .proto field names, as analysts read them.
var fingerprintJSON = protojson.MarshalOptions{UseProtoNames: true}

// FromAnomaly converts one anomaly event.
func FromAnomaly(e *pb.AnomalyEvent) (Alert, error) {
	var a Alert
	var err error
	if e.GetId() == "" {
		return a, fmt.Errorf("id: missing")
	}
	a.IncidentID, a.EventSeq = e.GetId(), e.GetSeq()
	if k := e.GetKind(); k < pb.AnomalyEvent_START || k > pb.AnomalyEvent_END {
		return a, fmt.Errorf("kind: %d is not START, UPDATE or END", k)
	} else {
		a.EventKind = int8(k)
	}
	var ok bool
	if a.Class, ok = classes[e.GetClass()]; !ok {
		return a, fmt.Errorf("class: unknown class %q", e.GetClass())
	}
	if s := e.GetSeverity(); s < pb.Severity_SEVERITY_INFO || s > pb.Severity_SEVERITY_CRITICAL {
		return a, fmt.Errorf("severity: %d is not info, warning or critical", s)
	} else {
		a.Severity = int8(s)
	}
	if d := e.GetDirection(); d < 0 || d > pb.Direction_DIRECTION_OUTBOUND {
		return a, fmt.Errorf("direction: unknown value %d", d)
	} else {
		a.Direction = int8(d)
	}
	if e.GetStartedAtNs() == 0 {
		return a, fmt.Errorf("started_at_ns: missing")
	}
	if a.StartedAt, err = dateTime("started_at_ns", e.GetStartedAtNs()); err != nil {
		return a, err
	}
	if a.UpdatedAt, err = dateTime("updated_at_ns", e.GetUpdatedAtNs()); err != nil {
		return a, err
	}
	if a.EndedAt, err = dateTime("ended_at_ns", e.GetEndedAtNs()); err != nil {
		return a, err
	}
	a.Customer, a.Subnet = e.GetCustomer(), e.GetSubnet()
	a.Metric, a.Unit = e.GetMetric(), e.GetUnit()
	a.Observed, a.Expected, a.Score = e.GetObserved(), e.GetExpected(), e.GetScore()
	a.PeakBps, a.PeakPps = e.GetPeakBps(), e.GetPeakPps()
	a.TotalBytes, a.TotalPackets = e.GetTotalBytes(), e.GetTotalPackets()
	a.Reason = e.GetReason()
	if fp := e.GetFingerprint(); fp != nil {
		b, err := fingerprintJSON.Marshal(fp)
		if err != nil {
			return a, fmt.Errorf("fingerprint: %w", err)
		}
		// protojson varies its whitespace on purpose; compacted, equal
		// fingerprints are equal strings in SQL.
		var c bytes.Buffer
		if err := json.Compact(&c, b); err != nil {
			return a, fmt.Errorf("fingerprint: %w", err)
		}
		a.Fingerprint = c.String()
	} else {
		a.Fingerprint = "{}"
	}
	return a, nil
}

// Baseline is one row of flowsentry.baselines (one metric of a snapshot).
type Baseline struct {
	Time      time.Time
	Customer  string
	Subnet    string
	Direction int8
	Metric    string
	Expected  float64
	Spread    float64
	Observed  float64
	P95       float64
	Samples   uint64
}

// BaselineColumns is the column list of every baselines INSERT.
const BaselineColumns = "time, customer, subnet, direction, metric, expected, spread, observed, p95, samples"

// FromBaseline converts a snapshot into one row per metric.
func FromBaseline(s *pb.BaselineSnapshot) ([]Baseline, error) {
	if s.GetTimeNs() == 0 {
		return nil, fmt.Errorf("time_ns: missing")
	}
	t, err := dateTime("time_ns", s.GetTimeNs())
	if err != nil {
		return nil, err
	}
	d := s.GetDirection()
	if d < 0 || d > pb.Direction_DIRECTION_OUTBOUND {
		return nil, fmt.Errorf("direction: unknown value %d", d)
	}
	out := make([]Baseline, 0, len(s.GetMetrics()))
	for i, m := range s.GetMetrics() {
		if m.GetMetric() == "" {
			return nil, fmt.Errorf("metrics[%d].metric: missing", i)
		}
		out = append(out, Baseline{Time: t, Customer: s.GetCustomer(), Subnet: s.GetSubnet(), Direction: int8(d),
			Metric: m.GetMetric(), Expected: m.GetExpected(), Spread: m.GetSpread(), Observed: m.GetObserved(),
			P95: m.GetP95(), Samples: m.GetSamples()})
	}
	return out, nil
}
