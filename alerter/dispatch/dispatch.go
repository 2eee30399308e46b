// Package dispatch is the alerter's core: it applies anomaly events to
// incidents, routes them into Alertmanager-style aggregation groups, decides
// at each group flush what each receiver must be told (respecting silences,
// inhibition, customer policies and what was already told), hands the
// messages to per-receiver delivery queues and records every outcome.
//
// At-least-once without duplicates: every event gets a Ticket that settles
// once the incident's current state is settled for every receiver it routes
// to (delivered, dead-lettered or deliberately not sent). The consumer
// commits a Kafka offset only after its ticket settled and the state file
// holding the outcomes was saved.
package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/packetworks/flowsentry/alerter/audit"
	"github.com/packetworks/flowsentry/alerter/incident"
	"github.com/packetworks/flowsentry/alerter/notify"
	"github.com/packetworks/flowsentry/alerter/route"
	"github.com/packetworks/flowsentry/alerter/state"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/prometheus/client_golang/prometheus"
)

// Config is the YAML "incidents" section.
type Config struct {
	// ResolveAfter resolves an incident without any event for this long
	// (the detector may have died); 0 disables.
	ResolveAfter time.Duration `yaml:"resolve_after"`
	// Retention keeps resolved incidents (API, dedup of late events).
	Retention time.Duration `yaml:"retention"`
	// Tick is how often groups and timeouts are evaluated.
	Tick time.Duration `yaml:"tick"`
}

// DefaultConfig suits detectors that update every 10-60 s.
func DefaultConfig() Config {
	return Config{ResolveAfter: 15 * time.Minute, Retention: 24 * time.Hour, Tick: time.Second}
}

// Validate names the bad key under prefix.
func (c Config) Validate(prefix string) error {
	var errs []error
	if c.ResolveAfter < 0 {
		errs = append(errs, fmt.Errorf("%s.resolve_after: must not be negative", prefix))
	}
	if c.Retention < time.Minute {
		errs = append(errs, fmt.Errorf("%s.retention: must be at least 1m", prefix))
	}
	if c.Tick <= 0 || c.Tick > time.Minute {
		errs = append(errs, fmt.Errorf("%s.tick: must be in (0, 1m]", prefix))
	}
	return errors.Join(errs...)
}

// Options wires an engine.
type Options struct {
	Config
	Tree      *route.Route
	Inhibit   []route.InhibitRule
	Receivers []*notify.Receiver
	// Silences from the config file (maintenance windows); API silences
	// live in the state file.
	Silences       []*route.Silence
	Store          *state.File // nil: nothing survives a restart
	DeadLetterPath string      // JSON lines, 0600; "" disables the file (the audit row stays)
	Audit          audit.Recorder
	Registerer     prometheus.Registerer
	Log            *slog.Logger
	Now            func() time.Time
}

// Engine is safe for concurrent use.
type Engine struct {
	o         Options
	now       func() time.Time
	log       *slog.Logger
	audit     audit.Recorder
	receivers map[string]*notify.Receiver

	mu       sync.Mutex
	tracker  *incident.Tracker
	entries  map[entryKey]*state.Entry
	silences map[string]*route.Silence
	groups   map[string]*group
	tickets  map[string][]*Ticket // pending, by incident id
	queues   map[string]*queue
	dirty    bool

	saveMu  sync.Mutex
	saveReq chan struct{}
	dlMu    sync.Mutex

	m metrics
}

type entryKey struct{ receiver, incident string }

type group struct {
	key       string
	route     *route.Route
	ids       map[string]bool
	nextFlush time.Time // first flush (group_wait); zero afterwards
	lastFlush time.Time
	lastSent  time.Time
	inflight  int
}

// Ticket settles when the event it was issued for needs nothing more.
type Ticket struct {
	incident string
	done     chan struct{}
}

// Done is closed once the ticket settled.
func (t *Ticket) Done() <-chan struct{} { return t.done }

// Settled reports whether Done is closed.
func (t *Ticket) Settled() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

func settledTicket() *Ticket {
	t := &Ticket{done: make(chan struct{})}
	close(t.done)
	return t
}

// New builds the engine and restores the saved state.
func New(o Options) (*Engine, error) {
	if o.Tree == nil {
		return nil, errors.New("dispatch: no routing tree")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Audit == nil {
		o.Audit = audit.Discard{}
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	e := &Engine{o: o, now: o.Now, log: o.Log, audit: o.Audit, receivers: map[string]*notify.Receiver{},
		tracker: incident.NewTracker(), entries: map[entryKey]*state.Entry{}, silences: map[string]*route.Silence{},
		groups: map[string]*group{}, tickets: map[string][]*Ticket{}, queues: map[string]*queue{},
		saveReq: make(chan struct{}, 1)}
	for _, r := range o.Receivers {
		e.receivers[r.Name] = r
		e.queues[r.Name] = newQueue()
	}
	var missing []string
	o.Tree.Walk(func(r *route.Route) {
		if e.receivers[r.Receiver] == nil {
			missing = append(missing, r.Receiver)
		}
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("dispatch: routes name unknown receivers %v", missing)
	}
	e.m = newMetrics(o.Registerer, e)
	for i, s := range o.Silences {
		if err := s.Validate(fmt.Sprintf("silences[%d]", i)); err != nil {
			return nil, err
		}
		s.Source = "config"
		if s.ID == "" {
			s.ID = fmt.Sprintf("config-%d", i)
		}
		e.silences[s.ID] = s
	}
	if o.Store != nil {
		snap, err := o.Store.Load()
		if err != nil {
			return nil, err
		}
		e.restore(snap)
	}
	return e, nil
}

// restore rebuilds incidents, the notification log, silences and groups.
func (e *Engine) restore(s *state.Snapshot) {
	e.tracker.Restore(s.Incidents)
	for _, en := range s.Log {
		e.entries[entryKey{en.Receiver, en.Incident}] = en
	}
	for i, sl := range s.Silences {
		if sl.Source == "config" {
			continue // the file's current content wins
		}
		if err := sl.Validate(fmt.Sprintf("state.silences[%d]", i)); err != nil {
			e.log.Warn("dropping invalid saved silence", "id", sl.ID, "err", err)
			continue
		}
		e.silences[sl.ID] = sl
	}
	now := e.now()
	for _, in := range s.Incidents {
		for _, r := range e.o.Tree.Match(in.Labels()) {
			g := e.groupFor(r, in, now)
			if en := e.entries[entryKey{r.Receiver, in.ID}]; en != nil && en.LastSentAt.After(g.lastSent) {
				g.lastSent = en.LastSentAt
			}
		}
	}
	// Groups with nothing left to tell are dropped at their first flush.
	e.m.restored.Add(float64(len(s.Incidents)))
	e.log.Info("state restored", "incidents", len(s.Incidents), "log_entries", len(s.Log), "silences", len(e.silences))
}

func (e *Engine) groupFor(r *route.Route, in *incident.Incident, now time.Time) *group {
	key := r.GroupKey(in.Labels())
	g := e.groups[key]
	if g == nil {
		g = &group{key: key, route: r, ids: map[string]bool{}, nextFlush: now.Add(r.GroupWait)}
		e.groups[key] = g
	}
	g.ids[in.ID] = true
	return g
}

// Handle applies one event and returns its ticket.
func (e *Engine) Handle(ev *pb.AnomalyEvent) *Ticket {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	in, change, err := e.tracker.Apply(ev, now)
	if err != nil {
		e.m.events.WithLabelValues("invalid").Inc()
		e.log.Warn("anomaly event dropped", "err", err)
		return settledTicket()
	}
	e.m.events.WithLabelValues(change.String()).Inc()
	e.dirty = true
	switch change {
	case incident.Opened, incident.Escalated, incident.ResolvedChange:
		action := map[incident.Change]string{incident.Opened: "opened", incident.Escalated: "escalated",
			incident.ResolvedChange: "resolved"}[change]
		e.auditIncident(in, action, "detector", in.Reason, now)
	}
	if change != incident.Duplicate && change != incident.Late {
		for _, r := range e.o.Tree.Match(in.Labels()) {
			e.groupFor(r, in, now)
		}
	}
	if e.settled(in) {
		return settledTicket()
	}
	t := &Ticket{incident: in.ID, done: make(chan struct{})}
	e.tickets[in.ID] = append(e.tickets[in.ID], t)
	return t
}

// settled: every receiver the incident routes to has its current phase
// settled. Caller holds e.mu.
func (e *Engine) settled(in *incident.Incident) bool {
	if in == nil {
		return true
	}
	for _, r := range e.o.Tree.Match(in.Labels()) {
		en := e.entries[entryKey{r.Receiver, in.ID}]
		if en == nil {
			return false
		}
		if in.State == incident.Resolved {
			if !en.SettledResolved {
				return false
			}
		} else if !en.SettledResolved && incident.SeverityRank(en.SettledSeverity) < incident.SeverityRank(in.MaxSeverity) {
			return false
		}
	}
	return true
}

func (e *Engine) checkTickets(ids ...string) {
	for _, id := range ids {
		ts := e.tickets[id]
		if len(ts) == 0 {
			continue
		}
		if e.settled(e.tracker.Get(id)) {
			for _, t := range ts {
				close(t.done)
			}
			delete(e.tickets, id)
		}
	}
}

// PendingTickets is the number of events not yet settled.
func (e *Engine) PendingTickets() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ts := range e.tickets {
		n += len(ts)
	}
	return n
}

// Tick runs timeouts, due group flushes and housekeeping.
func (e *Engine) Tick() {
	e.mu.Lock()
	now := e.now()
	for _, in := range e.tracker.ExpireSilent(now, e.o.ResolveAfter) {
		e.dirty = true
		e.m.events.WithLabelValues("timeout").Inc()
		e.auditIncident(in, "resolved", "timeout", in.Reason, now)
		for _, r := range e.o.Tree.Match(in.Labels()) {
			e.groupFor(r, in, now)
		}
	}
	keys := make([]string, 0, len(e.groups))
	for k := range e.groups {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic order for tests and logs
	var jobs []*job
	for _, k := range keys {
		g := e.groups[k]
		if g.inflight > 0 {
			continue
		}
		due := (!g.nextFlush.IsZero() && !now.Before(g.nextFlush)) ||
			(g.nextFlush.IsZero() && now.Sub(g.lastFlush) >= g.route.GroupInterval)
		if due {
			jobs = append(jobs, e.flush(g, now)...)
		}
	}
	e.housekeep(now)
	e.mu.Unlock()
	for _, j := range jobs {
		e.queues[j.rcv.Name].push(j)
	}
}

// flush decides what g's receiver must be told now. Caller holds e.mu.
func (e *Engine) flush(g *group, now time.Time) []*job {
	g.nextFlush, g.lastFlush = time.Time{}, now
	rcv := e.receivers[g.route.Receiver]
	filter, _ := rcv.Notifier.(notify.Filter)
	var firing, resolved, told []*incident.Incident
	var changed []string
	var open []map[string]string
	for _, in := range e.tracker.All() {
		if in.State == incident.Open {
			open = append(open, in.Labels())
		}
	}
	ids := make([]string, 0, len(g.ids))
	for id := range g.ids {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		in := e.tracker.Get(id)
		if in == nil {
			delete(g.ids, id)
			continue
		}
		labels := in.Labels()
		if g.route.GroupKey(labels) != g.key || !slices.Contains(e.o.Tree.Match(labels), g.route) {
			// The labels changed (severity): the incident belongs elsewhere now.
			delete(g.ids, id)
			continue
		}
		en := e.entry(rcv.Name, id)
		// Deliberate non-delivery: silenced, inhibited, not wanted.
		var why, outcome string
		if s := route.Silenced(e.silenceList(), labels, now); s != nil {
			why, outcome = fmt.Sprintf("silence %s by %s: %s", s.ID, s.CreatedBy, s.Comment), "silenced"
		} else if rule, src, ok := route.Inhibited(e.o.Inhibit, labels, open); ok && in.State == incident.Open {
			why, outcome = fmt.Sprintf("inhibited by incident %s (inhibit_rules[%d])", src, rule), "inhibited"
		} else if filter != nil {
			if ok, reason := filter.Wants(in); !ok {
				why, outcome = reason, "skipped"
			}
		}
		if in.State == incident.Open {
			if incident.SeverityRank(en.ToldSeverity) >= incident.SeverityRank(in.MaxSeverity) {
				if why == "" && in.Ack == nil {
					told = append(told, in)
				}
				continue
			}
			if why != "" {
				if incident.SeverityRank(en.SettledSeverity) < incident.SeverityRank(in.MaxSeverity) || en.Outcome != outcome {
					en.SettledSeverity = in.MaxSeverity
					e.settle(en, rcv, g, in, "firing", outcome, why, now)
					changed = append(changed, id)
				}
				continue
			}
			firing = append(firing, in.Clone())
			continue
		}
		// Resolved.
		switch {
		case en.SettledResolved:
			delete(g.ids, id)
		case !rcv.SendResolved:
			en.SettledResolved = true
			e.settle(en, rcv, g, in, "resolved", "not_sent", "send_resolved is false", now)
			changed = append(changed, id)
			delete(g.ids, id)
		case en.ToldSeverity != "":
			// Told it fired: always tell it ended, even if silenced
			// since, or a PagerDuty incident would stay open forever.
			resolved = append(resolved, in.Clone())
		case en.SettledSeverity != "":
			// Never told it fired (silenced, inhibited or not wanted):
			// its end is not news either.
			en.SettledResolved = true
			e.settle(en, rcv, g, in, "resolved", en.Outcome, "firing was not sent: "+en.Reason, now)
			changed = append(changed, id)
			delete(g.ids, id)
		case why != "":
			en.SettledResolved = true
			e.settle(en, rcv, g, in, "resolved", outcome, why, now)
			changed = append(changed, id)
			delete(g.ids, id)
		default:
			resolved = append(resolved, in.Clone())
		}
	}
	e.checkTickets(changed...)
	repeat := false
	if len(firing) == 0 && len(resolved) == 0 && len(told) > 0 && now.Sub(g.lastSent) >= g.route.RepeatInterval {
		repeat = true
		for _, in := range told {
			firing = append(firing, in.Clone())
		}
	}
	if len(g.ids) == 0 {
		delete(e.groups, g.key)
	}
	if len(firing) == 0 && len(resolved) == 0 {
		return nil
	}
	msg := &notify.Message{Receiver: rcv.Name, GroupKey: g.key, Firing: firing, Resolved: resolved, Repeat: repeat}
	var jobs []*job
	if p, ok := rcv.Notifier.(notify.PerIncident); ok && p.PerIncident() {
		for _, in := range firing {
			jobs = append(jobs, &job{rcv: rcv, group: g, msg: &notify.Message{Receiver: rcv.Name, GroupKey: g.key,
				Firing: []*incident.Incident{in}, Repeat: repeat}})
		}
		for _, in := range resolved {
			jobs = append(jobs, &job{rcv: rcv, group: g, msg: &notify.Message{Receiver: rcv.Name, GroupKey: g.key,
				Resolved: []*incident.Incident{in}}})
		}
	} else {
		jobs = []*job{{rcv: rcv, group: g, msg: msg}}
	}
	g.inflight += len(jobs)
	for _, j := range jobs {
		j.enqueued = now
	}
	return jobs
}

func (e *Engine) entry(receiver, id string) *state.Entry {
	k := entryKey{receiver, id}
	en := e.entries[k]
	if en == nil {
		en = &state.Entry{Receiver: receiver, Incident: id}
		e.entries[k] = en
	}
	return en
}

// settle records a deliberate non-delivery. Caller holds e.mu.
func (e *Engine) settle(en *state.Entry, rcv *notify.Receiver, g *group, in *incident.Incident, action, outcome, why string, now time.Time) {
	en.Outcome, en.Reason, en.At = outcome, why, now
	e.dirty = true
	e.m.notifications.WithLabelValues(rcv.Name, rcv.Notifier.Kind(), outcome).Inc()
	e.audit.Record(audit.Row{Time: now, IncidentID: in.ID, Record: "notification", Action: action, Receiver: rcv.Name,
		ReceiverKind: rcv.Notifier.Kind(), GroupKey: g.key, Outcome: outcome, Error: why, Customer: in.Customer,
		Subnet: in.Subnet, Class: in.Class, Severity: in.Severity})
	e.log.Info("notification not sent", "receiver", rcv.Name, "incident", in.ID, "action", action, "outcome", outcome, "why", why)
}

func (e *Engine) silenceList() []*route.Silence {
	out := make([]*route.Silence, 0, len(e.silences))
	for _, s := range e.silences {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// housekeep forgets old resolved incidents and old expired silences.
func (e *Engine) housekeep(now time.Time) {
	cutoff := now.Add(-e.o.Retention)
	ids := e.tracker.Forget(cutoff, func(id string) bool {
		return len(e.tickets[id]) > 0 || !e.settled(e.tracker.Get(id))
	})
	if len(ids) > 0 {
		drop := map[string]bool{}
		for _, id := range ids {
			drop[id] = true
		}
		for k := range e.entries {
			if drop[k.incident] {
				delete(e.entries, k)
			}
		}
		e.dirty = true
	}
	for id, s := range e.silences {
		if s.Source != "config" && s.EndsAt.Before(cutoff) {
			delete(e.silences, id)
			e.dirty = true
		}
	}
}

func (e *Engine) auditIncident(in *incident.Incident, action, actor, detail string, now time.Time) {
	e.audit.Record(audit.Row{Time: now, IncidentID: in.ID, Record: "incident", Action: action, Customer: in.Customer,
		Subnet: in.Subnet, Class: in.Class, Severity: in.Severity, Actor: actor, Detail: detail})
}

// snapshot copies the state under the lock.
func (e *Engine) snapshot() *state.Snapshot {
	s := &state.Snapshot{SavedAt: e.now()}
	for _, in := range e.tracker.All() {
		s.Incidents = append(s.Incidents, in.Clone())
	}
	sort.Slice(s.Incidents, func(i, j int) bool { return s.Incidents[i].ID < s.Incidents[j].ID })
	for _, en := range e.entries {
		c := *en
		s.Log = append(s.Log, &c)
	}
	for _, sl := range e.silenceList() {
		if sl.Source != "config" {
			c := *sl
			s.Silences = append(s.Silences, &c)
		}
	}
	e.dirty = false
	return s
}

// Persist saves the state if it changed. The consumer calls it before
// committing offsets.
func (e *Engine) Persist() error {
	if e.o.Store == nil {
		return nil
	}
	e.saveMu.Lock()
	defer e.saveMu.Unlock()
	e.mu.Lock()
	if !e.dirty {
		e.mu.Unlock()
		return nil
	}
	s := e.snapshot()
	e.mu.Unlock()
	start := time.Now()
	if err := e.o.Store.Save(s); err != nil {
		e.mu.Lock()
		e.dirty = true
		e.mu.Unlock()
		e.m.saveErrors.Inc()
		return err
	}
	e.m.saveSeconds.Observe(time.Since(start).Seconds())
	return nil
}

func (e *Engine) requestSave() {
	select {
	case e.saveReq <- struct{}{}:
	default:
	}
}

// Run starts the delivery workers, the ticker and the saver, and blocks
// until ctx ends. In-flight deliveries are abandoned unrecorded, so they are
// sent again after a restart (their tickets never settled).
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for name, q := range e.queues {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.worker(ctx, name, q)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-e.saveReq:
				if err := e.Persist(); err != nil {
					e.log.Error("saving state failed", "err", err)
				}
			}
		}
	}()
	t := time.NewTicker(e.o.Tick)
	defer t.Stop()
	e.Tick()
	for {
		select {
		case <-ctx.Done():
			for _, q := range e.queues {
				q.close()
			}
			wg.Wait()
			return nil
		case <-t.C:
			e.Tick()
			e.requestSave()
		}
	}
}

// job is one delivery.
type job struct {
	rcv      *notify.Receiver
	group    *group
	msg      *notify.Message
	enqueued time.Time
	// send overrides Notify (PagerDuty acknowledge).
	send func(ctx context.Context) error
}

func (e *Engine) worker(ctx context.Context, name string, q *queue) {
	for {
		j, ok := q.pop(ctx)
		if !ok {
			return
		}
		e.deliver(ctx, j)
		q.done()
	}
}

func (e *Engine) deliver(ctx context.Context, j *job) {
	kind := j.rcv.Notifier.Kind()
	action := "firing"
	if j.msg != nil && len(j.msg.Firing) == 0 {
		action = "resolved"
	}
	if j.msg != nil && j.msg.Repeat {
		action = "repeat"
	}
	if j.send != nil {
		action = "acknowledge"
	}
	send := j.send
	if send == nil {
		send = func(ctx context.Context) error { return j.rcv.Notifier.Notify(ctx, j.msg) }
	}
	err := notify.Deliver(ctx, j.rcv.Retry, j.rcv.Limiter, send, func(a notify.Attempt) {
		outcome := "delivered"
		switch {
		case a.Err == nil:
		case !a.Final:
			outcome = "retry"
		default:
			outcome = "failed"
		}
		if ctx.Err() != nil && a.Err != nil {
			outcome = "interrupted"
		}
		e.m.notifications.WithLabelValues(j.rcv.Name, kind, outcome).Inc()
		var status uint16
		var ne *notify.Error
		if errors.As(a.Err, &ne) {
			status = uint16(ne.Status)
		}
		errText := ""
		if a.Err != nil {
			errText = a.Err.Error()
		}
		for _, in := range j.incidents() {
			var lat uint32
			if a.Err == nil && !in.PhaseAt.IsZero() {
				d := e.now().Sub(in.PhaseAt)
				lat = uint32(d.Milliseconds())
				if action != "repeat" && action != "acknowledge" {
					e.m.latency.WithLabelValues(j.rcv.Name).Observe(d.Seconds())
				}
			}
			e.audit.Record(audit.Row{Time: a.Start, IncidentID: in.ID, Record: "notification", Action: action,
				Receiver: j.rcv.Name, ReceiverKind: kind, GroupKey: j.groupKey(), Attempt: uint16(min(a.N, 65535)),
				Outcome: outcome, Error: errText, Status: status, LatencyMs: lat, Customer: in.Customer,
				Subnet: in.Subnet, Class: in.Class, Severity: in.Severity})
		}
		if a.Err != nil {
			e.log.Warn("delivery attempt failed", "receiver", j.rcv.Name, "action", action, "attempt", a.N,
				"retry_in", a.Wait, "err", a.Err)
		}
	})
	if ctx.Err() != nil && err != nil {
		// Shutting down: nothing is recorded, the restart sends again.
		return
	}
	dead := err != nil
	if dead {
		e.m.deadLetters.WithLabelValues(j.rcv.Name).Inc()
		e.deadLetter(j, action, err)
	}
	if j.send != nil {
		return
	}
	e.mu.Lock()
	now := e.now()
	outcome := "delivered"
	if dead {
		outcome = "dead_letter"
	}
	var ids []string
	for _, in := range j.msg.Firing {
		en := e.entry(j.rcv.Name, in.ID)
		if incident.SeverityRank(in.MaxSeverity) > incident.SeverityRank(en.ToldSeverity) {
			en.ToldSeverity = in.MaxSeverity
		}
		if incident.SeverityRank(in.MaxSeverity) > incident.SeverityRank(en.SettledSeverity) {
			en.SettledSeverity = in.MaxSeverity
		}
		en.LastSentAt, en.Outcome, en.Reason, en.At = now, outcome, errString(err), now
		ids = append(ids, in.ID)
	}
	for _, in := range j.msg.Resolved {
		en := e.entry(j.rcv.Name, in.ID)
		en.ToldResolved, en.SettledResolved = true, true
		en.Outcome, en.Reason, en.At = outcome, errString(err), now
		ids = append(ids, in.ID)
	}
	j.group.inflight--
	if !dead {
		j.group.lastSent = now
	}
	e.dirty = true
	e.checkTickets(ids...)
	e.mu.Unlock()
	// Save now, not at the next tick: a crash right after a delivery must
	// find it recorded, or Slack and e-mail would be sent twice.
	e.requestSave()
}

func (j *job) incidents() []*incident.Incident {
	if j.msg == nil {
		return nil
	}
	return append(append([]*incident.Incident{}, j.msg.Firing...), j.msg.Resolved...)
}

func (j *job) groupKey() string {
	if j.group == nil {
		return ""
	}
	return j.group.key
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// deadLetter keeps what could not be delivered: a JSON line per delivery
// with the full message, so that an operator can replay it by hand.
func (e *Engine) deadLetter(j *job, action string, cause error) {
	e.log.Error("notification dead-lettered", "receiver", j.rcv.Name, "action", action, "err", cause)
	if e.o.DeadLetterPath == "" {
		return
	}
	rec := map[string]any{"time": e.now().UTC(), "receiver": j.rcv.Name, "kind": j.rcv.Notifier.Kind(),
		"action": action, "error": cause.Error(), "message": j.msg}
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	e.dlMu.Lock()
	defer e.dlMu.Unlock()
	_ = os.MkdirAll(filepath.Dir(e.o.DeadLetterPath), 0o700)
	f, err := os.OpenFile(e.o.DeadLetterPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		e.log.Error("dead-letter file", "err", err)
		return
	}
	defer f.Close()
	_, _ = f.Write(append(b, '\n'))
}
