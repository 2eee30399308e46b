// Package incident turns the detector's anomaly events into incidents: one
// incident per anomaly id, opened on START, updated on UPDATE and resolved on
// END, or after a silence of events (the detector may have died) with the
// reason recorded. It is pure state: no I/O, no clock of its own.
package incident

import (
	"errors"
	"fmt"
	"time"

	"github.com/packetworks/flowsentry/schemas/pb"
)

// State of an incident.
type State string

const (
	Open     State = "open"
	Resolved State = "resolved"
)

// Severity names, ordered by rank.
var severityRank = map[string]int{"info": 1, "warning": 2, "critical": 3}

// SeverityRank orders severities (0 for an unknown name).
func SeverityRank(s string) int { return severityRank[s] }

// Incident is the alerter's view of one anomaly.
type Incident struct {
	ID        string `json:"id"`
	State     State  `json:"state"`
	Customer  string `json:"customer"`
	Subnet    string `json:"subnet"`
	Direction string `json:"direction"`
	Class     string `json:"class"`
	Severity  string `json:"severity"`
	// MaxSeverity is the highest severity seen: a downgrade does not page
	// again, an escalation above it does.
	MaxSeverity string `json:"max_severity"`

	StartedAt time.Time `json:"started_at"`
	UpdatedAt time.Time `json:"updated_at"`
	EndedAt   time.Time `json:"ended_at,omitzero"`

	Metric       string      `json:"metric"`
	Unit         string      `json:"unit"`
	Observed     float64     `json:"observed"`
	Expected     float64     `json:"expected"`
	Score        float64     `json:"score"`
	PeakBPS      uint64      `json:"peak_bps"`
	PeakPPS      uint64      `json:"peak_pps"`
	CurrentBPS   uint64      `json:"current_bps"`
	CurrentPPS   uint64      `json:"current_pps"`
	TotalBytes   uint64      `json:"total_bytes"`
	TotalPackets uint64      `json:"total_packets"`
	Fingerprint  Fingerprint `json:"fingerprint"`
	Detector     string      `json:"detector,omitempty"`

	// ResolvedBy is "detector" (an END event) or "timeout" (no event for
	// the configured silence); Reason says why in words.
	ResolvedBy string `json:"resolved_by,omitempty"`
	Reason     string `json:"reason,omitempty"`

	LastSeq uint32 `json:"last_seq"`
	Events  int    `json:"events"`
	// Wall-clock times at the alerter: FirstSeenAt measures event-to-delivery
	// latency, LastEventAt drives the silence timeout.
	FirstSeenAt time.Time `json:"first_seen_at"`
	LastEventAt time.Time `json:"last_event_at"`
	// PhaseAt is when the alerter learnt of the current phase (opened,
	// escalated, resolved): the start of the event-to-delivery latency.
	PhaseAt time.Time `json:"phase_at"`

	Ack *Ack `json:"ack,omitempty"`
}

// Ack is an operator's acknowledgement: repeats stop, the incident stays open.
type Ack struct {
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Comment string    `json:"comment,omitempty"`
}

// Fingerprint mirrors pb.Fingerprint in a JSON-friendly form.
type Fingerprint struct {
	TopSources           []TopItem  `json:"top_sources,omitempty"`
	TopSrcPorts          []TopItem  `json:"top_src_ports,omitempty"`
	TopDstPorts          []TopItem  `json:"top_dst_ports,omitempty"`
	TopProtocols         []TopItem  `json:"top_protocols,omitempty"`
	TopDestinations      []TopItem  `json:"top_destinations,omitempty"`
	DistinctSources      uint64     `json:"distinct_sources,omitempty"`
	DistinctDestinations uint64     `json:"distinct_destinations,omitempty"`
	Mitigation           Mitigation `json:"mitigation,omitzero"`
}

// TopItem is one heavy hitter.
type TopItem struct {
	Key     string  `json:"key"`
	Bytes   uint64  `json:"bytes"`
	Packets uint64  `json:"packets"`
	Flows   uint64  `json:"flows"`
	Share   float64 `json:"share"`
}

// Mitigation is the suggested FlowSpec-like rule.
type Mitigation struct {
	DstPrefix       string   `json:"dst_prefix,omitempty"`
	SrcPrefix       string   `json:"src_prefix,omitempty"` // outbound: the customer host or subnet sending
	Protocols       []uint32 `json:"protocols,omitempty"`
	SrcPorts        []uint32 `json:"src_ports,omitempty"`
	DstPorts        []uint32 `json:"dst_ports,omitempty"`
	PacketLengthMin uint32   `json:"packet_length_min,omitempty"`
	PacketLengthMax uint32   `json:"packet_length_max,omitempty"`
	TCPFlags        string   `json:"tcp_flags,omitempty"`
	Action          string   `json:"action,omitempty"`
	Description     string   `json:"description,omitempty"`
}

// Labels are what routes, silences and inhibition rules match on. scope is
// "customer" for a customer-wide anomaly (no subnet) and "subnet" otherwise,
// so that a customer-wide outage can inhibit the per-subnet drops it causes.
func (in *Incident) Labels() map[string]string {
	scope := "subnet"
	if in.Subnet == "" {
		scope = "customer"
	}
	return map[string]string{
		"id": in.ID, "customer": in.Customer, "subnet": in.Subnet, "direction": in.Direction,
		"class": in.Class, "severity": in.Severity, "scope": scope,
	}
}

// Clone returns a deep enough copy for readers outside the owner's lock.
func (in *Incident) Clone() *Incident {
	c := *in
	if in.Ack != nil {
		a := *in.Ack
		c.Ack = &a
	}
	return &c
}

// Change is what an event did to an incident.
type Change int

const (
	Duplicate Change = iota // re-delivered or out-of-date event: nothing changed
	Opened
	Updated
	Escalated // severity rose above anything notified so far
	ResolvedChange
	Late // event for an incident already resolved (e.g. by timeout): recorded, no reopen
)

func (c Change) String() string {
	return [...]string{"duplicate", "opened", "updated", "escalated", "resolved", "late"}[c]
}

// Errors for events that cannot become incidents (counted and dropped).
var (
	ErrNoID      = errors.New("anomaly event without id")
	ErrBadKind   = errors.New("anomaly event of unknown kind")
	ErrTooLongID = errors.New("anomaly id longer than 255 bytes")
)

// Tracker holds the incidents. Not safe for concurrent use: its owner locks.
type Tracker struct {
	byID map[string]*Incident
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{byID: map[string]*Incident{}} }

// Restore puts back incidents from a saved state.
func (t *Tracker) Restore(incs []*Incident) {
	for _, in := range incs {
		t.byID[in.ID] = in
	}
}

// Get returns the incident with id, or nil.
func (t *Tracker) Get(id string) *Incident { return t.byID[id] }

// All returns every incident (owned by the tracker: do not modify).
func (t *Tracker) All() []*Incident {
	out := make([]*Incident, 0, len(t.byID))
	for _, in := range t.byID {
		out = append(out, in)
	}
	return out
}

// Apply applies one event received at now.
func (t *Tracker) Apply(ev *pb.AnomalyEvent, now time.Time) (*Incident, Change, error) {
	if ev.GetId() == "" {
		return nil, Duplicate, ErrNoID
	}
	if len(ev.GetId()) > 255 {
		// PagerDuty's dedup_key limit: a longer id could not deduplicate.
		return nil, Duplicate, ErrTooLongID
	}
	switch ev.GetKind() {
	case pb.AnomalyEvent_START, pb.AnomalyEvent_UPDATE, pb.AnomalyEvent_END:
	default:
		return nil, Duplicate, fmt.Errorf("%w %d (id %s)", ErrBadKind, ev.GetKind(), ev.GetId())
	}
	in := t.byID[ev.GetId()]
	if in == nil {
		// An UPDATE or END without a START still opens the incident: the
		// START may be past retention or the local state may be lost, and
		// a missing page is worse than a late one.
		in = &Incident{ID: ev.GetId(), State: Open, FirstSeenAt: now, PhaseAt: now}
		fill(in, ev, now)
		in.MaxSeverity = in.Severity
		t.byID[in.ID] = in
		if ev.GetKind() == pb.AnomalyEvent_END {
			resolve(in, "detector", ev.GetReason(), nsTime(ev.GetEndedAtNs(), now))
			return in, ResolvedChange, nil
		}
		return in, Opened, nil
	}
	if ev.GetSeq() <= in.LastSeq && in.Events > 0 {
		return in, Duplicate, nil
	}
	if in.State == Resolved {
		in.LastSeq = ev.GetSeq()
		in.Events++
		in.LastEventAt = now
		if ev.GetKind() == pb.AnomalyEvent_END && in.ResolvedBy == "timeout" {
			// The detector's own end is the better record.
			in.EndedAt = nsTime(ev.GetEndedAtNs(), in.EndedAt)
			in.Reason = ev.GetReason()
			in.ResolvedBy = "detector"
		}
		return in, Late, nil
	}
	fill(in, ev, now)
	if ev.GetKind() == pb.AnomalyEvent_END {
		resolve(in, "detector", ev.GetReason(), nsTime(ev.GetEndedAtNs(), now))
		in.PhaseAt = now
		return in, ResolvedChange, nil
	}
	if SeverityRank(in.Severity) > SeverityRank(in.MaxSeverity) {
		in.MaxSeverity = in.Severity
		in.PhaseAt = now
		return in, Escalated, nil
	}
	return in, Updated, nil
}

// ExpireSilent resolves open incidents without any event for longer than
// after, and returns them.
func (t *Tracker) ExpireSilent(now time.Time, after time.Duration) []*Incident {
	if after <= 0 {
		return nil
	}
	var out []*Incident
	for _, in := range t.byID {
		if in.State == Open && now.Sub(in.LastEventAt) > after {
			resolve(in, "timeout", fmt.Sprintf("no event from the detector for %s", after), now)
			in.PhaseAt = now
			out = append(out, in)
		}
	}
	return out
}

// Forget drops resolved incidents that ended before cutoff and returns their ids.
func (t *Tracker) Forget(cutoff time.Time, keep func(id string) bool) []string {
	var ids []string
	for id, in := range t.byID {
		if in.State == Resolved && in.LastEventAt.Before(cutoff) && (keep == nil || !keep(id)) {
			delete(t.byID, id)
			ids = append(ids, id)
		}
	}
	return ids
}

// Acknowledge records an operator's acknowledgement.
func (t *Tracker) Acknowledge(id, by, comment string, now time.Time) (*Incident, error) {
	in := t.byID[id]
	if in == nil {
		return nil, fmt.Errorf("incident %q not found", id)
	}
	in.Ack = &Ack{By: by, At: now, Comment: comment}
	return in, nil
}

func resolve(in *Incident, by, reason string, at time.Time) {
	in.State = Resolved
	in.ResolvedBy = by
	in.Reason = reason
	in.EndedAt = at
}

func fill(in *Incident, ev *pb.AnomalyEvent, now time.Time) {
	in.Customer = ev.GetCustomer()
	in.Subnet = ev.GetSubnet()
	in.Direction = DirectionName(ev.GetDirection())
	in.Class = ev.GetClass()
	in.Severity = SeverityName(ev.GetSeverity())
	if in.StartedAt.IsZero() || ev.GetKind() == pb.AnomalyEvent_START {
		in.StartedAt = nsTime(ev.GetStartedAtNs(), now)
	}
	in.UpdatedAt = nsTime(ev.GetUpdatedAtNs(), in.StartedAt)
	in.Metric, in.Unit = ev.GetMetric(), ev.GetUnit()
	in.Observed, in.Expected, in.Score = ev.GetObserved(), ev.GetExpected(), ev.GetScore()
	in.PeakBPS = max(in.PeakBPS, ev.GetPeakBps())
	in.PeakPPS = max(in.PeakPPS, ev.GetPeakPps())
	in.CurrentBPS, in.CurrentPPS = ev.GetCurrentBps(), ev.GetCurrentPps()
	in.TotalBytes = max(in.TotalBytes, ev.GetTotalBytes())
	in.TotalPackets = max(in.TotalPackets, ev.GetTotalPackets())
	if fp := ev.GetFingerprint(); fp != nil {
		in.Fingerprint = convertFingerprint(fp)
	}
	in.Detector = ev.GetDetector()
	in.LastSeq = ev.GetSeq()
	in.Events++
	in.LastEventAt = now
}

func convertFingerprint(fp *pb.Fingerprint) Fingerprint {
	items := func(src []*pb.TopItem) []TopItem {
		var out []TopItem
		for _, it := range src {
			out = append(out, TopItem{Key: it.GetKey(), Bytes: it.GetBytes(), Packets: it.GetPackets(),
				Flows: it.GetFlows(), Share: it.GetShare()})
		}
		return out
	}
	m := fp.GetMitigation()
	return Fingerprint{
		TopSources: items(fp.GetTopSources()), TopSrcPorts: items(fp.GetTopSrcPorts()),
		TopDstPorts: items(fp.GetTopDstPorts()), TopProtocols: items(fp.GetTopProtocols()),
		TopDestinations: items(fp.GetTopDestinations()), DistinctSources: fp.GetDistinctSources(),
		DistinctDestinations: fp.GetDistinctDestinations(),
		Mitigation: Mitigation{DstPrefix: m.GetDstPrefix(), Protocols: m.GetProtocols(), SrcPorts: m.GetSrcPorts(),
			DstPorts: m.GetDstPorts(), SrcPrefix: m.GetSrcPrefix(), PacketLengthMin: m.GetPacketLengthMin(), PacketLengthMax: m.GetPacketLengthMax(),
			TCPFlags: m.GetTcpFlags(), Action: m.GetAction(), Description: m.GetDescription()},
	}
}

// SeverityName maps the protobuf severity to its label value.
func SeverityName(s pb.Severity) string {
	switch s {
	case pb.Severity_SEVERITY_INFO:
		return "info"
	case pb.Severity_SEVERITY_WARNING:
		return "warning"
	case pb.Severity_SEVERITY_CRITICAL:
		return "critical"
	}
	// Unknown severity pages as a warning rather than being dropped.
	return "warning"
}

// DirectionName maps the protobuf direction to its label value.
func DirectionName(d pb.Direction) string {
	switch d {
	case pb.Direction_DIRECTION_INBOUND:
		return "inbound"
	case pb.Direction_DIRECTION_OUTBOUND:
		return "outbound"
	}
	return "unknown"
}

func nsTime(ns uint64, def time.Time) time.Time {
	if ns == 0 {
		return def
	}
	return time.Unix(0, int64(ns)).UTC()
}
