package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// What the run observed, each with the wall clock of this machine (every
// process runs here, so one clock times every stage).

// attackRun is one attack as the traffic driver sent it.
type attackRun struct {
	Name      string    `json:"name"`
	Kind      string    `json:"kind"` // syn_flood, udp_flood
	Customer  string    `json:"customer"`
	Subnet    string    `json:"subnet"`
	Direction string    `json:"direction"`
	Exporter  string    `json:"exporter"` // the protocol its datagrams used
	Sent      time.Time `json:"sent"`     // t0: the first attack datagram was written to the socket
	Stopped   time.Time `json:"stopped"`  // the last attack datagram was written
}

// anomalyEvent is one pb.AnomalyEvent read from the anomalies topic.
type anomalyEvent struct {
	ID, Kind, Class, Severity   string
	Customer, Subnet, Direction string
	// Published is the Kafka record timestamp (zero when the producer set
	// none); Arrived is when our reader got the record.
	Published, Arrived time.Time
}

// at is when the event was published: the Kafka record timestamp when the
// producer set one, else when our reader got it (a few ms later: the
// reader long-polls with MinBytes 1).
func (e anomalyEvent) at() time.Time {
	if !e.Published.IsZero() {
		return e.Published
	}
	return e.Arrived
}

// mention is one incident named in one notification request.
type mention struct {
	Receiver string // slack, pagerduty, webhook
	At       time.Time
	ID       string // incident id (= anomaly id); "" when the payload has none
	Customer string
	Subnet   string
	Resolved bool
}

// outcome is what happened to one attack.
type outcome struct {
	Attack   attackRun `json:"attack"`
	Incident string    `json:"incident,omitempty"`
	Class    string    `json:"class,omitempty"`
	Severity string    `json:"severity,omitempty"`
	// Zero when the stage never happened.
	Start         time.Time            `json:"start,omitzero"` // t1
	StartArrived  time.Time            `json:"start_arrived,omitzero"`
	Notified      time.Time            `json:"notified,omitzero"` // t2
	NotifiedVia   string               `json:"notified_via,omitempty"`
	FirstBy       map[string]time.Time `json:"first_by_receiver,omitempty"`
	End           time.Time            `json:"end,omitzero"`
	Resolved      time.Time            `json:"resolved,omitzero"` // first resolved notification
	ResolvedVia   string               `json:"resolved_via,omitempty"`
	KafkaTimeUsed bool                 `json:"kafka_time_used"`
}

// matchStart finds the attack's START: the first START event on the
// attack's customer, subnet and direction published after its first
// datagram (an earlier one cannot be this attack's).
func matchStart(a attackRun, events []anomalyEvent) (anomalyEvent, bool) {
	var best anomalyEvent
	found := false
	for _, e := range events {
		if e.Kind != "START" || e.Customer != a.Customer || e.Subnet != a.Subnet || e.Direction != a.Direction {
			continue
		}
		if a.Sent.IsZero() || !e.at().After(a.Sent) {
			continue
		}
		if !found || e.at().Before(best.at()) {
			best, found = e, true
		}
	}
	return best, found
}

// names reports whether a notification is about incident id of customer
// and subnet: by id when the payload carries one, else by customer and
// subnet (the first notification of a group need not carry an id in every
// format; all three of ours do, but a mention without one still counts).
func (m mention) names(id, customer, subnet string) bool {
	if m.ID != "" {
		return m.ID == id
	}
	return m.Customer == customer && m.Subnet == subnet
}

// match builds each attack's outcome from the events and notifications.
func match(attacks []attackRun, events []anomalyEvent, mentions []mention) []outcome {
	out := make([]outcome, len(attacks))
	for i, a := range attacks {
		o := outcome{Attack: a}
		st, ok := matchStart(a, events)
		if ok {
			o.Incident, o.Class, o.Severity = st.ID, st.Class, st.Severity
			o.Start, o.StartArrived, o.KafkaTimeUsed = st.at(), st.Arrived, !st.Published.IsZero()
			for _, e := range events {
				if e.Kind == "END" && e.ID == st.ID && (o.End.IsZero() || e.at().Before(o.End)) {
					o.End = e.at()
				}
			}
			for _, m := range mentions {
				if !m.names(st.ID, a.Customer, a.Subnet) {
					continue
				}
				if m.Resolved {
					if o.Resolved.IsZero() || m.At.Before(o.Resolved) {
						o.Resolved, o.ResolvedVia = m.At, m.Receiver
					}
					continue
				}
				if o.Notified.IsZero() || m.At.Before(o.Notified) {
					o.Notified, o.NotifiedVia = m.At, m.Receiver
				}
				if o.FirstBy == nil {
					o.FirstBy = map[string]time.Time{}
				}
				if t, seen := o.FirstBy[m.Receiver]; !seen || m.At.Before(t) {
					o.FirstBy[m.Receiver] = m.At
				}
			}
		}
		out[i] = o
	}
	return out
}

// unexpected lists START events no attack explains (false positives: a
// baseline not warm enough, or another subnet disturbed).
func unexpected(outcomes []outcome, events []anomalyEvent) []anomalyEvent {
	known := map[string]bool{}
	for _, o := range outcomes {
		known[o.Incident] = true
	}
	var out []anomalyEvent
	for _, e := range events {
		if e.Kind == "START" && !known[e.ID] {
			out = append(out, e)
			known[e.ID] = true
		}
	}
	return out
}

// stage is one measured interval: from and to pick its ends in an outcome.
type stage struct {
	ID, Name string
	from, to func(o outcome) time.Time
}

var stages = []stage{
	{"e2e.latency.datagram_to_start", "end-to-end: first attack datagram → START on the anomalies topic",
		func(o outcome) time.Time { return o.Attack.Sent }, func(o outcome) time.Time { return o.Start }},
	{"e2e.latency.start_to_notification", "end-to-end: START → first notification request received",
		func(o outcome) time.Time { return o.Start }, func(o outcome) time.Time { return o.Notified }},
	{"e2e.latency", "end-to-end latency, datagram → notification",
		func(o outcome) time.Time { return o.Attack.Sent }, func(o outcome) time.Time { return o.Notified }},
	{"e2e.latency.stop_to_end", "end-to-end: last attack datagram → END on the anomalies topic",
		func(o outcome) time.Time { return o.Attack.Stopped }, func(o outcome) time.Time { return o.End }},
	{"e2e.latency.stop_to_resolved", "end-to-end: last attack datagram → first resolved notification",
		func(o outcome) time.Time { return o.Attack.Stopped }, func(o outcome) time.Time { return o.Resolved }},
}

// durations returns the stage's seconds for every outcome that reached
// both ends, in attack order, and how many did not.
func (s stage) durations(outcomes []outcome) (secs []float64, missing int) {
	for _, o := range outcomes {
		a, b := s.from(o), s.to(o)
		if a.IsZero() || b.IsZero() {
			missing++
			continue
		}
		secs = append(secs, b.Sub(a).Seconds())
	}
	return secs, missing
}

// summary is p50/p95/max of a stage over the attacks.
type summary struct {
	N             int
	P50, P95, Max float64
	Min           float64
}

// summarize uses nearest-rank percentiles: with fewer than 20 samples p95
// is the maximum, which is what it honestly is with so few.
func summarize(xs []float64) (summary, bool) {
	if len(xs) == 0 {
		return summary{}, false
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	return summary{N: len(s), P50: nearestRank(s, 0.50), P95: nearestRank(s, 0.95), Max: s[len(s)-1], Min: s[0]}, true
}

// nearestRank is the smallest value with at least p of the samples at or
// below it (sorted input).
func nearestRank(sorted []float64, p float64) float64 {
	k := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(k, 0), len(sorted)-1)]
}

// checkOrder returns the problems with an outcome's times: every stage
// present and t0 < t1 < t2, stop < END < resolved, stop after t0.
func checkOrder(o outcome) []string {
	var p []string
	name := o.Attack.Name
	seq := []struct {
		what string
		t    time.Time
	}{{"first datagram", o.Attack.Sent}, {"START", o.Start}, {"first notification", o.Notified}}
	end := []struct {
		what string
		t    time.Time
	}{{"last datagram", o.Attack.Stopped}, {"END", o.End}, {"resolved notification", o.Resolved}}
	for _, chain := range [][]struct {
		what string
		t    time.Time
	}{seq, end} {
		for i, x := range chain {
			if x.t.IsZero() {
				p = append(p, fmt.Sprintf("%s: no %s", name, x.what))
				continue
			}
			if i > 0 && !chain[i-1].t.IsZero() && !x.t.After(chain[i-1].t) {
				p = append(p, fmt.Sprintf("%s: %s (%s) not after %s (%s)", name, x.what, x.t.Format(time.StampMilli),
					chain[i-1].what, chain[i-1].t.Format(time.StampMilli)))
			}
		}
	}
	if !o.Attack.Sent.IsZero() && !o.Attack.Stopped.IsZero() && o.Attack.Stopped.Before(o.Attack.Sent) {
		p = append(p, fmt.Sprintf("%s: stopped before it was sent", name))
	}
	return p
}
