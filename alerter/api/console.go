package api

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/packetworks/flowsentry/alerter/console/history"
)

// History is the ClickHouse side of the operator console (history.Store):
// traffic against the baseline, top talkers, subnet search, capacity and
// what ClickHouse keeps of an incident.
type History interface {
	Traffic(context.Context, history.TrafficQuery) (*history.Traffic, error)
	Talkers(context.Context, history.TalkersQuery) (*history.Talkers, error)
	Subnets(ctx context.Context, text string, days, limit int) ([]history.SubnetMatch, error)
	Capacity(context.Context, history.CapacityQuery) (*history.Capacity, error)
	Incident(ctx context.Context, id, customer string) (*history.IncidentHistory, error)
}

// Option configures the handler.
type Option func(*Handler)

// WithHistory enables the console's data endpoints; without it they
// answer 503.
func WithHistory(h History) Option { return func(x *Handler) { x.history = h } }

func (h *Handler) routeConsole() {
	h.route("GET /api/v1/incidents/{id}/history", RoleReadOnly, h.incidentHistory)
	h.route("GET /api/v1/traffic", RoleReadOnly, h.traffic)
	h.route("GET /api/v1/talkers", RoleReadOnly, h.talkers)
	h.route("GET /api/v1/subnets", RoleReadOnly, h.subnets)
	h.route("GET /api/v1/capacity", RoleReadOnly, h.capacity)
	h.route("GET /api/v1/capacity.csv", RoleReadOnly, h.capacityCSV)
}

// params reads query parameters, keeping the first error (which names
// the parameter) for a 400.
type params struct {
	r   *http.Request
	err error
}

func (p *params) str(name, def string) string {
	if v := p.r.URL.Query().Get(name); v != "" {
		return v
	}
	return def
}

func (p *params) int(name string, def int) int {
	v := p.r.URL.Query().Get(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("%s: %q is not an integer", name, v)
	}
	return n
}

func (p *params) time(name string, def time.Time) time.Time {
	v := p.r.URL.Query().Get(name)
	if v == "" {
		return def
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("%s: %q is not an RFC 3339 time (2026-11-20T11:30:00Z)", name, v)
	}
	return t
}

// ask runs a history call and answers its error, if any: 400 for a bad
// question, 503 when ClickHouse cannot answer (the incident list and pages
// from the alerter's own state keep working), 500 for a failed query.
func (h *Handler) ask(w http.ResponseWriter, p *params, call func(History) (any, error)) (any, bool) {
	if p.err != nil {
		writeError(w, http.StatusBadRequest, p.err.Error())
		return nil, false
	}
	if h.history == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{
			"error": "console data needs ClickHouse and the console is disabled (console.enabled)", "unavailable": "clickhouse"})
		return nil, false
	}
	v, err := call(h.history)
	switch {
	case err == nil:
		return v, true
	case errors.Is(err, history.ErrBadRequest):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, history.ErrUnavailable):
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error(), "unavailable": "clickhouse"})
	default:
		h.log.Error("console query failed", "path", p.r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
	return nil, false
}

// consoleData answers a history call as JSON.
func (h *Handler) consoleData(w http.ResponseWriter, p *params, call func(History) (any, error)) {
	if v, ok := h.ask(w, p, call); ok {
		writeJSON(w, http.StatusOK, v)
	}
}

func (h *Handler) incidentHistory(w http.ResponseWriter, r *http.Request, _ Caller) {
	id := r.PathValue("id")
	p := &params{r: r}
	customer := p.str("customer", "")
	if in, _, err := h.b.Incident(id); err == nil {
		customer = in.Customer
	}
	h.consoleData(w, p, func(hs History) (any, error) { return hs.Incident(r.Context(), id, customer) })
}

func (h *Handler) traffic(w http.ResponseWriter, r *http.Request, _ Caller) {
	p := &params{r: r}
	to := p.time("to", time.Now())
	q := history.TrafficQuery{Customer: p.str("customer", ""), Subnet: p.str("subnet", ""),
		Direction: p.str("direction", "inbound"), Metric: p.str("metric", "bps"), From: p.time("from", to.Add(-6*time.Hour)), To: to}
	h.consoleData(w, p, func(hs History) (any, error) { return hs.Traffic(r.Context(), q) })
}

func (h *Handler) talkers(w http.ResponseWriter, r *http.Request, _ Caller) {
	p := &params{r: r}
	to := p.time("to", time.Now())
	q := history.TalkersQuery{Customer: p.str("customer", ""), Subnet: p.str("subnet", ""), Direction: p.str("direction", "inbound"),
		From: p.time("from", to.Add(-15*time.Minute)), To: to, Limit: p.int("limit", 10)}
	h.consoleData(w, p, func(hs History) (any, error) { return hs.Talkers(r.Context(), q) })
}

func (h *Handler) subnets(w http.ResponseWriter, r *http.Request, _ Caller) {
	p := &params{r: r}
	text, days, limit := p.str("q", ""), p.int("days", 7), p.int("limit", 50)
	h.consoleData(w, p, func(hs History) (any, error) {
		m, err := hs.Subnets(r.Context(), text, days, limit)
		return map[string]any{"subnets": m}, err
	})
}

func capacityQuery(p *params) history.CapacityQuery {
	return history.CapacityQuery{Customer: p.str("customer", ""), Days: p.int("days", 30), To: p.time("to", time.Time{})}
}

func (h *Handler) capacity(w http.ResponseWriter, r *http.Request, _ Caller) {
	p := &params{r: r}
	q := capacityQuery(p)
	h.consoleData(w, p, func(hs History) (any, error) { return hs.Capacity(r.Context(), q) })
}

// CapacityCSVHeader is the first line of /api/v1/capacity.csv.
var CapacityCSVHeader = []string{"customer", "subnet", "direction", "p95_bps", "peak_bps", "avg_bps", "bytes",
	"active_minutes", "first_bps", "last_bps", "edge_days", "growth_pct", "from", "to"}

// capacityCSV is the capacity table for spreadsheets. Errors are JSON,
// as everywhere else.
func (h *Handler) capacityCSV(w http.ResponseWriter, r *http.Request, _ Caller) {
	p := &params{r: r}
	q := capacityQuery(p)
	v, ok := h.ask(w, p, func(hs History) (any, error) { return hs.Capacity(r.Context(), q) })
	if !ok {
		return
	}
	c, _ := v.(*history.Capacity)
	if c == nil {
		writeError(w, http.StatusInternalServerError, "capacity: no answer")
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="flowsentry-capacity-%dd.csv"`, q.Days))
	w.Header().Set("Cache-Control", "no-store")
	if err := writeCapacityCSV(w, c); err != nil {
		h.log.Warn("capacity csv", "err", err)
	}
}

func writeCapacityCSV(w io.Writer, c *history.Capacity) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(CapacityCSVHeader)
	num := func(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
	for _, r := range c.Rows {
		growth := ""
		if r.GrowthPct != nil {
			growth = strconv.FormatFloat(*r.GrowthPct, 'f', 2, 64)
		}
		_ = cw.Write([]string{cell(r.Customer), cell(r.Subnet), r.Direction, num(r.P95BPS), num(r.PeakBPS), num(r.AvgBPS),
			strconv.FormatUint(r.Bytes, 10), strconv.FormatUint(r.ActiveMinutes, 10), num(r.FirstBPS), num(r.LastBPS),
			strconv.Itoa(r.EdgeDays), growth, c.From.Format(time.RFC3339), c.To.Format(time.RFC3339)})
	}
	cw.Flush()
	return cw.Error()
}

// cell keeps a spreadsheet from running a name as a formula.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
