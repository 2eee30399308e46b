package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/packetworks/flowsentry/alerter/audit"
	"github.com/packetworks/flowsentry/alerter/incident"
	"github.com/packetworks/flowsentry/alerter/notify"
	"github.com/packetworks/flowsentry/alerter/route"
	"github.com/packetworks/flowsentry/alerter/state"
)

// ErrNotFound is returned for unknown incidents and silences.
var ErrNotFound = errors.New("not found")

// ErrReadOnly is returned when changing a silence from the config file.
var ErrReadOnly = errors.New("silence comes from the config file; change it there")

// IncidentFilter selects incidents for listing.
type IncidentFilter struct {
	State    string // "", open or resolved
	Customer string
}

// Incidents lists incidents, newest first.
func (e *Engine) Incidents(f IncidentFilter) []*incident.Incident {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*incident.Incident
	for _, in := range e.tracker.All() {
		if (f.State == "" || string(in.State) == f.State) && (f.Customer == "" || in.Customer == f.Customer) {
			out = append(out, in.Clone())
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.After(out[j].StartedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Incident returns one incident and what each receiver was told.
func (e *Engine) Incident(id string) (*incident.Incident, []state.Entry, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	in := e.tracker.Get(id)
	if in == nil {
		return nil, nil, ErrNotFound
	}
	var log []state.Entry
	for k, en := range e.entries {
		if k.incident == id {
			log = append(log, *en)
		}
	}
	sort.Slice(log, func(i, j int) bool { return log[i].Receiver < log[j].Receiver })
	return in.Clone(), log, nil
}

// Acknowledge records an operator's acknowledgement: repeats stop and
// PagerDuty receivers that paged for it are sent an acknowledge event.
func (e *Engine) Acknowledge(id, by, comment string) (*incident.Incident, error) {
	e.mu.Lock()
	now := e.now()
	in := e.tracker.Get(id)
	if in == nil {
		e.mu.Unlock()
		return nil, ErrNotFound
	}
	in, _ = e.tracker.Acknowledge(id, by, comment, now)
	e.dirty = true
	e.audit.Record(audit.Row{Time: now, IncidentID: id, Record: "incident", Action: "acknowledged", Customer: in.Customer,
		Subnet: in.Subnet, Class: in.Class, Severity: in.Severity, Actor: by, Detail: comment})
	type ackJob struct {
		q *queue
		j *job
	}
	var jobs []ackJob
	if in.State == incident.Open {
		for k, en := range e.entries {
			r := e.receivers[k.receiver]
			pd, ok := r.Notifier.(*notify.PagerDuty)
			if k.incident != id || !ok || en.ToldSeverity == "" || en.ToldResolved {
				continue
			}
			inc := in.Clone()
			jobs = append(jobs, ackJob{e.queues[r.Name], &job{rcv: r, msg: &notify.Message{Receiver: r.Name, Firing: []*incident.Incident{inc}},
				send: func(ctx context.Context) error { return pd.Acknowledge(ctx, id) }}})
		}
	}
	c := in.Clone()
	e.mu.Unlock()
	for _, a := range jobs {
		a.q.push(a.j)
	}
	e.requestSave()
	return c, nil
}

// Silences lists silences (config and API), by id.
func (e *Engine) Silences() []*route.Silence {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*route.Silence
	for _, s := range e.silenceList() {
		c := *s
		out = append(out, &c)
	}
	return out
}

// Silence returns one silence.
func (e *Engine) Silence(id string) (*route.Silence, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.silences[id]
	if s == nil {
		return nil, ErrNotFound
	}
	c := *s
	return &c, nil
}

// PutSilence creates (empty ID) or replaces a silence made through the API.
func (e *Engine) PutSilence(s route.Silence, actor string) (*route.Silence, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	action := "created"
	if s.ID == "" {
		s.ID = newID()
		s.CreatedAt = now
	} else {
		old := e.silences[s.ID]
		if old == nil {
			return nil, ErrNotFound
		}
		if old.Source == "config" {
			return nil, ErrReadOnly
		}
		s.CreatedAt = old.CreatedAt
		action = "updated"
	}
	if s.CreatedBy == "" {
		s.CreatedBy = actor
	}
	s.UpdatedAt, s.Source = now, "api"
	if err := s.Validate("silence"); err != nil {
		return nil, err
	}
	e.silences[s.ID] = &s
	e.dirty = true
	e.audit.Record(audit.Row{Time: now, IncidentID: "", Record: "silence", Action: action, Actor: actor,
		Detail: fmt.Sprintf("id=%s matchers=%s starts=%s ends=%s comment=%s", s.ID, strings.Join(s.Matchers, ","),
			s.StartsAt.UTC().Format("2006-01-02T15:04:05Z"), s.EndsAt.UTC().Format("2006-01-02T15:04:05Z"), s.Comment)})
	c := s
	e.requestSave()
	return &c, nil
}

// ExpireSilence ends a silence now (kept for the record until retention).
func (e *Engine) ExpireSilence(id, actor string) (*route.Silence, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := e.silences[id]
	if s == nil {
		return nil, ErrNotFound
	}
	if s.Source == "config" {
		return nil, ErrReadOnly
	}
	now := e.now()
	if s.EndsAt.After(now) {
		s.EndsAt = now
		if !s.StartsAt.Before(now) {
			s.StartsAt = now.Add(-1)
		}
	}
	s.UpdatedAt = now
	e.dirty = true
	e.audit.Record(audit.Row{Time: now, Record: "silence", Action: "expired", Actor: actor, Detail: "id=" + id})
	c := *s
	e.requestSave()
	return &c, nil
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
