package history

import (
	"context"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// IncidentHistory is what ClickHouse keeps of an incident: the detector's
// events (flowsentry.alerts, written by the sink) and the alerter's audit
// rows (flowsentry.notifications: lifecycle steps and every attempt).
type IncidentHistory struct {
	Events        []Event      `json:"events"`
	Notifications []AuditEntry `json:"notifications"`
}

// Event is one START/UPDATE/END event.
type Event struct {
	Seq       uint32    `json:"seq"`
	Kind      string    `json:"kind"` // start, update, end
	Severity  string    `json:"severity"`
	StartedAt time.Time `json:"started_at"`
	UpdatedAt time.Time `json:"updated_at"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	Metric    string    `json:"metric"`
	Unit      string    `json:"unit"`
	Observed  float64   `json:"observed"`
	Expected  float64   `json:"expected"`
	Score     float64   `json:"score"`
	PeakBPS   uint64    `json:"peak_bps"`
	PeakPPS   uint64    `json:"peak_pps"`
	Reason    string    `json:"reason,omitempty"`
}

// AuditEntry is one row of flowsentry.notifications.
type AuditEntry struct {
	Time         time.Time `json:"time"`
	Record       string    `json:"record"` // incident, notification
	Action       string    `json:"action"`
	Receiver     string    `json:"receiver,omitempty"`
	ReceiverKind string    `json:"receiver_kind,omitempty"`
	Attempt      uint16    `json:"attempt,omitempty"`
	Outcome      string    `json:"outcome,omitempty"`
	Error        string    `json:"error,omitempty"`
	Status       uint16    `json:"status,omitempty"`
	LatencyMs    uint32    `json:"latency_ms,omitempty"`
	Actor        string    `json:"actor,omitempty"`
	Detail       string    `json:"detail,omitempty"`
}

// MaxAuditRows bounds the notifications returned for one incident.
const MaxAuditRows = 1000

// Incident reads an incident's events and audit rows. customer, when
// known, narrows both reads to the customer's part of the sort key.
func (s *Store) Incident(ctx context.Context, id, customer string) (*IncidentHistory, error) {
	if id == "" {
		return nil, badRequest("incident id is required")
	}
	where, args := "incident_id = ?", []any{id}
	if customer != "" {
		where, args = where+" AND customer = ?", append(args, customer)
	}
	out := &IncidentHistory{Events: []Event{}, Notifications: []AuditEntry{}}
	// alerts is a ReplacingMergeTree: a re-delivered event may still be
	// there twice until merged; keep one row per seq.
	seen := map[uint32]bool{}
	err := s.query(ctx, "incident_events", func(r driver.Rows) error {
		var e Event
		if err := r.Scan(&e.Seq, &e.Kind, &e.Severity, &e.StartedAt, &e.UpdatedAt, &e.EndedAt, &e.Metric, &e.Unit,
			&e.Observed, &e.Expected, &e.Score, &e.PeakBPS, &e.PeakPPS, &e.Reason); err != nil {
			return err
		}
		if seen[e.Seq] {
			return nil
		}
		seen[e.Seq] = true
		e.StartedAt, e.UpdatedAt = e.StartedAt.UTC(), e.UpdatedAt.UTC()
		if e.EndedAt.Unix() <= 0 {
			e.EndedAt = time.Time{} // 1970-01-01: still open
		} else {
			e.EndedAt = e.EndedAt.UTC()
		}
		out.Events = append(out.Events, e)
		return nil
	}, "SELECT event_seq, toString(event_kind), toString(severity), started_at, updated_at, ended_at, metric, unit, "+
		"observed, expected, score, peak_bps, peak_pps, reason FROM alerts WHERE "+where+" ORDER BY event_seq", args...)
	if err != nil {
		return nil, err
	}
	err = s.query(ctx, "incident_notifications", func(r driver.Rows) error {
		var a AuditEntry
		if err := r.Scan(&a.Time, &a.Record, &a.Action, &a.Receiver, &a.ReceiverKind, &a.Attempt, &a.Outcome, &a.Error,
			&a.Status, &a.LatencyMs, &a.Actor, &a.Detail); err != nil {
			return err
		}
		a.Time = a.Time.UTC()
		out.Notifications = append(out.Notifications, a)
		return nil
	}, "SELECT time, toString(record), action, receiver, receiver_kind, attempt, outcome, error, status, latency_ms, actor, detail "+
		"FROM notifications WHERE "+where+" ORDER BY time, record, receiver, attempt LIMIT "+strconv.Itoa(MaxAuditRows), args...)
	if err != nil {
		return nil, err
	}
	return out, nil
}
