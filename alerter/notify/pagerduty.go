package notify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/packetworks/flowsentry/alerter/incident"
)

// PagerDuty Events API v2 limits.
const (
	PagerDutyURL          = "https://events.pagerduty.com/v2/enqueue"
	pagerDutyMaxSummary   = 1024
	pagerDutyMaxDedupKey  = 255
	pagerDutyMaxCustomLen = 512 * 1024 // whole event must stay under 512 KB
)

// PagerDutyEvent is an Events API v2 event.
type PagerDutyEvent struct {
	RoutingKey  string            `json:"routing_key"`
	EventAction string            `json:"event_action"` // trigger, acknowledge, resolve
	DedupKey    string            `json:"dedup_key"`
	Payload     *PagerDutyPayload `json:"payload,omitempty"`
	Client      string            `json:"client,omitempty"`
	ClientURL   string            `json:"client_url,omitempty"`
	Links       []PagerDutyLink   `json:"links,omitempty"`
}

// PagerDutyPayload is the trigger payload.
type PagerDutyPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"`
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

// PagerDutyLink is a link shown on the PagerDuty incident.
type PagerDutyLink struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// PagerDuty sends one event per incident: trigger while it fires (a
// re-trigger with the same dedup_key updates, never duplicates), resolve
// when it ends.
type PagerDuty struct {
	URL        string
	RoutingKey string
	// SeverityMap maps our severities to PagerDuty's (critical, error,
	// warning, info).
	SeverityMap map[string]string
	Links       Links
	Client      *http.Client
}

func (p *PagerDuty) Kind() string      { return "pagerduty" }
func (p *PagerDuty) PerIncident() bool { return true }

// DedupKey is the incident id, hashed only if it exceeds PagerDuty's limit.
func DedupKey(id string) string {
	if len(id) <= pagerDutyMaxDedupKey {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// Events builds the events for a message.
func (p *PagerDuty) Events(m *Message) []PagerDutyEvent {
	var out []PagerDutyEvent
	for _, in := range m.Firing {
		out = append(out, p.trigger(in))
	}
	for _, in := range m.Resolved {
		out = append(out, PagerDutyEvent{RoutingKey: p.RoutingKey, EventAction: "resolve", DedupKey: DedupKey(in.ID)})
	}
	return out
}

func (p *PagerDuty) trigger(in *incident.Incident) PagerDutyEvent {
	sev := p.SeverityMap[in.Severity]
	if sev == "" {
		sev = DefaultPagerDutySeverity[in.Severity]
	}
	if sev == "" {
		sev = "warning"
	}
	source := in.Subnet
	if source == "" {
		source = "customer " + in.Customer
	}
	details := map[string]any{
		"incident_id": in.ID, "customer": in.Customer, "subnet": in.Subnet, "direction": in.Direction,
		"metric": in.Metric, "unit": in.Unit, "observed": in.Observed, "expected": in.Expected, "score": in.Score,
		"figures": Figures(in), "peak_bps": in.PeakBPS, "peak_pps": in.PeakPPS,
		"started_at": in.StartedAt.UTC().Format(time.RFC3339), "fingerprint": in.Fingerprint, "sql": SQL(in),
	}
	if mt := MitigationText(in.Fingerprint.Mitigation); mt != "" {
		details["suggested_mitigation"] = mt
	}
	ev := PagerDutyEvent{
		RoutingKey: p.RoutingKey, EventAction: "trigger", DedupKey: DedupKey(in.ID), Client: "Flowsentry",
		Payload: &PagerDutyPayload{
			Summary:  truncate(Title(in)+": "+Figures(in), pagerDutyMaxSummary),
			Source:   source,
			Severity: sev, Timestamp: in.StartedAt.UTC().Format(time.RFC3339),
			Component: in.Metric, Group: in.Customer, Class: in.Class, CustomDetails: details,
		},
	}
	if u := p.Links.Incident(in.ID); u != "" {
		ev.ClientURL = u
		ev.Links = append(ev.Links, PagerDutyLink{Href: u, Text: "Flowsentry console"})
	}
	if u := p.Links.Query(SQL(in)); u != "" {
		ev.Links = append(ev.Links, PagerDutyLink{Href: u, Text: "Flows of this incident (SQL)"})
	}
	return ev
}

// DefaultPagerDutySeverity maps ours to PagerDuty's.
var DefaultPagerDutySeverity = map[string]string{"critical": "critical", "warning": "warning", "info": "info"}

// Notify sends the message's events (one per incident after the split).
func (p *PagerDuty) Notify(ctx context.Context, m *Message) error {
	for _, ev := range p.Events(m) {
		if err := p.send(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// Acknowledge tells PagerDuty an operator acknowledged the incident.
func (p *PagerDuty) Acknowledge(ctx context.Context, id string) error {
	return p.send(ctx, PagerDutyEvent{RoutingKey: p.RoutingKey, EventAction: "acknowledge", DedupKey: DedupKey(id)})
}

func (p *PagerDuty) send(ctx context.Context, ev PagerDutyEvent) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return Permanent(err)
	}
	if len(body) > pagerDutyMaxCustomLen && ev.Payload != nil {
		// Oversized events are rejected: drop the bulky details rather
		// than the page.
		ev.Payload.CustomDetails = map[string]any{"incident_id": ev.DedupKey, "note": "details too large, see console"}
		body, _ = json.Marshal(ev)
	}
	url := p.URL
	if url == "" {
		url = PagerDutyURL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client(p.Client).Do(req)
	if err != nil {
		return fmt.Errorf("pagerduty: %w", err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return HTTPError(resp, rb)
	}
	return nil
}
