// Package api is the alerter's HTTP API under /api/v1/: incidents (list,
// get, acknowledge) and silences (create, read, update, expire). Callers
// authenticate with bearer tokens; read-only callers may only read
// (403 on writes), no token is 401. Every call is logged with its caller.
// The operator console (alerter/console) is served beside it, outside
// /api/, and reads its data here: the incidents and silences above, and
// with WithHistory the ClickHouse-backed endpoints of console.go.
package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/packetworks/flowsentry/alerter/dispatch"
	"github.com/packetworks/flowsentry/alerter/incident"
	"github.com/packetworks/flowsentry/alerter/notify"
	"github.com/packetworks/flowsentry/alerter/route"
	"github.com/packetworks/flowsentry/alerter/state"
)

// Backend is what the API needs from the engine.
type Backend interface {
	Incidents(dispatch.IncidentFilter) []*incident.Incident
	Incident(id string) (*incident.Incident, []state.Entry, error)
	Acknowledge(id, by, comment string) (*incident.Incident, error)
	Silences() []*route.Silence
	Silence(id string) (*route.Silence, error)
	PutSilence(s route.Silence, actor string) (*route.Silence, error)
	ExpireSilence(id, actor string) (*route.Silence, error)
}

// Prefix is where the API lives.
const Prefix = "/api/v1/"

const maxBody = 64 << 10

// Handler serves the API.
type Handler struct {
	b      Backend
	tokens *Tokens
	log    *slog.Logger
	mux    *http.ServeMux
	// history answers the console's ClickHouse questions (nil: 503).
	history History
}

// New builds the handler; mount it at Prefix.
func New(b Backend, tokens *Tokens, log *slog.Logger, opts ...Option) *Handler {
	h := &Handler{b: b, tokens: tokens, log: log, mux: http.NewServeMux()}
	for _, o := range opts {
		o(h)
	}
	h.route("GET /api/v1/incidents", RoleReadOnly, h.listIncidents)
	h.route("GET /api/v1/incidents/{id}", RoleReadOnly, h.getIncident)
	h.route("POST /api/v1/incidents/{id}/ack", RoleOperator, h.ack)
	h.route("GET /api/v1/silences", RoleReadOnly, h.listSilences)
	h.route("POST /api/v1/silences", RoleOperator, h.createSilence)
	h.route("GET /api/v1/silences/{id}", RoleReadOnly, h.getSilence)
	h.route("PUT /api/v1/silences/{id}", RoleOperator, h.updateSilence)
	h.route("DELETE /api/v1/silences/{id}", RoleOperator, h.expireSilence)
	h.route("GET /api/v1/whoami", RoleReadOnly, func(w http.ResponseWriter, r *http.Request, c Caller) {
		writeJSON(w, http.StatusOK, map[string]string{"name": c.Name, "role": c.Role})
	})
	h.routeConsole()
	h.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := h.authenticate(w, r); ok {
			writeError(w, http.StatusNotFound, "no such endpoint")
		}
	})
	return h
}

type handlerFunc func(http.ResponseWriter, *http.Request, Caller)

func (h *Handler) route(pattern, role string, f handlerFunc) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c, ok := h.authenticate(w, r)
		if !ok {
			return
		}
		if role == RoleOperator && c.Role != RoleOperator {
			writeError(w, http.StatusForbidden, "the "+c.Role+" role may not change anything")
			return
		}
		f(w, r, c)
	})
}

// ServeHTTP logs every call with its caller.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	r.Body = http.MaxBytesReader(rw, r.Body, maxBody)
	h.mux.ServeHTTP(rw, r)
	caller, role := "-", "-"
	if rw.caller != nil {
		caller, role = rw.caller.Name, rw.caller.Role
	}
	h.log.Info("api call", "caller", caller, "role", role, "method", r.Method, "path", r.URL.Path,
		"status", rw.status, "remote", r.RemoteAddr, "duration_ms", time.Since(start).Milliseconds())
}

func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (Caller, bool) {
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	c, found := h.tokens.Lookup(strings.TrimSpace(token))
	if !ok || !found {
		w.Header().Set("WWW-Authenticate", `Bearer realm="flowsentry-alerter"`)
		writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
		return Caller{}, false
	}
	if sw, ok := w.(*statusWriter); ok {
		sw.caller = &c
	}
	return c, true
}

func (h *Handler) listIncidents(w http.ResponseWriter, r *http.Request, _ Caller) {
	q := r.URL.Query()
	st := q.Get("state")
	if st != "" && st != string(incident.Open) && st != string(incident.Resolved) {
		writeError(w, http.StatusBadRequest, "state: must be open or resolved")
		return
	}
	class, severity := q.Get("class"), q.Get("severity")
	if severity != "" && incident.SeverityRank(severity) == 0 {
		writeError(w, http.StatusBadRequest, "severity: must be info, warning or critical")
		return
	}
	var list []*incident.Incident
	for _, in := range h.b.Incidents(dispatch.IncidentFilter{State: st, Customer: q.Get("customer")}) {
		if (class == "" || in.Class == class) && (severity == "" || in.Severity == severity) {
			list = append(list, in)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"incidents": nonNil(list)})
}

func (h *Handler) getIncident(w http.ResponseWriter, r *http.Request, _ Caller) {
	in, log, err := h.b.Incident(r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	// summary: the texts the notifications carry, so the console shows
	// the same mitigation and query as Slack and PagerDuty did.
	writeJSON(w, http.StatusOK, map[string]any{"incident": in, "notifications": nonNil(log),
		"summary": map[string]string{"title": notify.Title(in), "figures": notify.Figures(in),
			"mitigation": notify.MitigationText(in.Fingerprint.Mitigation), "sql": notify.SQL(in)}})
}

func (h *Handler) ack(w http.ResponseWriter, r *http.Request, c Caller) {
	var body struct {
		Comment string `json:"comment"`
	}
	if r.ContentLength != 0 {
		if err := decode(r, &body); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	in, err := h.b.Acknowledge(r.PathValue("id"), c.Name, body.Comment)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"incident": in})
}

func (h *Handler) listSilences(w http.ResponseWriter, r *http.Request, _ Caller) {
	now := time.Now()
	var out []silenceView
	for _, s := range h.b.Silences() {
		if r.URL.Query().Get("active") == "true" && !s.Active(now) {
			continue
		}
		out = append(out, view(s, now))
	}
	writeJSON(w, http.StatusOK, map[string]any{"silences": nonNil(out)})
}

func (h *Handler) getSilence(w http.ResponseWriter, r *http.Request, _ Caller) {
	s, err := h.b.Silence(r.PathValue("id"))
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, view(s, time.Now()))
}

// silenceInput is what a caller may set; the creator is the caller.
type silenceInput struct {
	Matchers []string  `json:"matchers"`
	StartsAt time.Time `json:"starts_at"`
	EndsAt   time.Time `json:"ends_at"`
	Comment  string    `json:"comment"`
}

func (h *Handler) createSilence(w http.ResponseWriter, r *http.Request, c Caller) {
	h.putSilence(w, r, c, "")
}

func (h *Handler) updateSilence(w http.ResponseWriter, r *http.Request, c Caller) {
	h.putSilence(w, r, c, r.PathValue("id"))
}

func (h *Handler) putSilence(w http.ResponseWriter, r *http.Request, c Caller, id string) {
	var in silenceInput
	if err := decode(r, &in); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if in.StartsAt.IsZero() {
		in.StartsAt = time.Now()
	}
	s, err := h.b.PutSilence(route.Silence{ID: id, Matchers: in.Matchers, StartsAt: in.StartsAt, EndsAt: in.EndsAt,
		Comment: in.Comment, CreatedBy: c.Name}, c.Name)
	if err != nil {
		writeErr(w, err)
		return
	}
	status := http.StatusOK
	if id == "" {
		status = http.StatusCreated
		w.Header().Set("Location", Prefix+"silences/"+s.ID)
	}
	writeJSON(w, status, view(s, time.Now()))
}

func (h *Handler) expireSilence(w http.ResponseWriter, r *http.Request, c Caller) {
	s, err := h.b.ExpireSilence(r.PathValue("id"), c.Name)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, view(s, time.Now()))
}

type silenceView struct {
	*route.Silence
	Status string `json:"status"` // pending, active, expired
}

func view(s *route.Silence, now time.Time) silenceView {
	st := "active"
	switch {
	case now.Before(s.StartsAt):
		st = "pending"
	case !now.Before(s.EndsAt):
		st = "expired"
	}
	return silenceView{Silence: s, Status: st}
}

func decode(r *http.Request, dst any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("bad JSON body: %w", err)
	}
	return nil
}

func writeErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, dispatch.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, dispatch.ErrReadOnly):
		writeError(w, http.StatusConflict, err.Error())
	default:
		// Validation errors name the field (e.g. silence.ends_at).
		writeError(w, http.StatusUnprocessableEntity, err.Error())
	}
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

type statusWriter struct {
	http.ResponseWriter
	status int
	caller *Caller
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}
