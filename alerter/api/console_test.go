package api

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/alerter/console/history"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// fakeHistory records the questions and answers with canned data or err.
type fakeHistory struct {
	err      error
	traffic  []history.TrafficQuery
	talkers  []history.TalkersQuery
	capacity []history.CapacityQuery
	incident []string // id|customer
	subnets  []string
}

func (f *fakeHistory) Traffic(_ context.Context, q history.TrafficQuery) (*history.Traffic, error) {
	f.traffic = append(f.traffic, q)
	if f.err != nil {
		return nil, f.err
	}
	return &history.Traffic{Metric: q.Metric, Table: "flows_1m", Points: []history.Point{{T: q.From, V: 42}}}, nil
}

func (f *fakeHistory) Talkers(_ context.Context, q history.TalkersQuery) (*history.Talkers, error) {
	f.talkers = append(f.talkers, q)
	return &history.Talkers{Sources: []history.Talker{{Key: "198.51.100.7", Bytes: 9}}}, f.err
}

func (f *fakeHistory) Subnets(_ context.Context, text string, days, limit int) ([]history.SubnetMatch, error) {
	f.subnets = append(f.subnets, fmt.Sprintf("%s|%d|%d", text, days, limit))
	return []history.SubnetMatch{{Customer: "acme", Subnet: "10.0.0.0/24"}}, f.err
}

func (f *fakeHistory) Capacity(_ context.Context, q history.CapacityQuery) (*history.Capacity, error) {
	f.capacity = append(f.capacity, q)
	if f.err != nil {
		return nil, f.err
	}
	g := -12.5
	from := time.Date(2026, 10, 21, 0, 0, 0, 0, time.UTC)
	return &history.Capacity{From: from, To: from.Add(30 * 24 * time.Hour), Days: 30, Rows: []history.CapacityRow{
		{Customer: "acme", Subnet: "10.0.0.0/24", Direction: "inbound", P95BPS: 1234.5, PeakBPS: 2000, AvgBPS: 100.25, Bytes: 987654,
			ActiveMinutes: 42, FirstBPS: 80, LastBPS: 70, EdgeDays: 7, GrowthPct: &g},
		{Customer: "=cmd|' /C calc'!A0", Subnet: "10.0.1.0/24", Direction: "outbound", EdgeDays: 7},
	}}, nil
}

func (f *fakeHistory) Incident(_ context.Context, id, customer string) (*history.IncidentHistory, error) {
	f.incident = append(f.incident, id+"|"+customer)
	return &history.IncidentHistory{Events: []history.Event{{Seq: 0, Kind: "start"}}}, f.err
}

func newConsoleServer(t *testing.T, opts ...Option) (*httptest.Server, *bytes.Buffer) {
	t.Helper()
	srv, e, _ := newServer(t)
	srv.Close()
	tokens, _ := NewTokens([]Token{{Name: "olga", Role: RoleOperator, Token: opToken}, {Name: "rita", Role: RoleReadOnly, Token: roToken}})
	var logs bytes.Buffer
	s := httptest.NewServer(New(e, tokens, slog.New(slog.NewJSONHandler(&logs, nil)), opts...))
	t.Cleanup(s.Close)
	return s, &logs
}

func get(t *testing.T, srv *httptest.Server, token, path string) (*http.Response, string) {
	t.Helper()
	return send(t, srv, token, "GET", path, "")
}

var consolePaths = []string{"/api/v1/traffic?customer=acme&subnet=10.0.0.0/24", "/api/v1/talkers?customer=acme&subnet=10.0.0.0/24",
	"/api/v1/subnets?q=acme", "/api/v1/capacity", "/api/v1/capacity.csv", "/api/v1/incidents/inc-1/history"}

func TestConsoleEndpointsAuth(t *testing.T) {
	srv, logs := newConsoleServer(t, WithHistory(&fakeHistory{}))
	for _, p := range consolePaths {
		for _, tc := range []struct {
			token string
			want  int
		}{{"", 401}, {"not-a-valid-token-at-all", 401}, {roToken, 200}, {opToken, 200}} {
			if resp, body := get(t, srv, tc.token, p); resp.StatusCode != tc.want {
				t.Errorf("GET %s as %q: %d, want %d (%s)", p, tc.token, resp.StatusCode, tc.want, body)
			}
		}
	}
	// Reads only: writing to them is no endpoint, never a change.
	if resp, _ := send(t, srv, roToken, "POST", "/api/v1/traffic", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("POST traffic: %d", resp.StatusCode)
	}
	// Silences stay operator-only, the console uses these endpoints as they are.
	if resp, _ := send(t, srv, roToken, "POST", "/api/v1/silences", `{"matchers":["customer=acme"],"ends_at":"2099-01-01T00:00:00Z","comment":"x"}`); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("read-only silence: %d", resp.StatusCode)
	}
	if !strings.Contains(logs.String(), `"path":"/api/v1/capacity.csv"`) || !strings.Contains(logs.String(), `"caller":"rita"`) {
		t.Fatalf("console calls not logged with their caller:\n%s", logs.String())
	}
}

func TestConsoleParameters(t *testing.T) {
	fh := &fakeHistory{}
	srv, _ := newConsoleServer(t, WithHistory(fh))
	cases := []struct {
		path      string
		want      int
		wantInErr string
	}{
		{"/api/v1/traffic?customer=acme&subnet=10.0.0.0/24&direction=outbound&metric=pps&from=2026-11-20T10:00:00Z&to=2026-11-20T12:00:00Z", 200, ""},
		{"/api/v1/traffic?customer=acme&from=yesterday", 400, "from"},
		{"/api/v1/talkers?customer=acme&subnet=x&limit=ten", 400, "limit"},
		{"/api/v1/capacity?days=90&customer=acme&to=2026-11-20T12:00:00Z", 200, ""},
		{"/api/v1/subnets?q=203.0&days=3&limit=5", 200, ""},
		{"/api/v1/incidents?severity=loud", 400, "severity"},
	}
	for _, tc := range cases {
		resp, body := get(t, srv, roToken, tc.path)
		if resp.StatusCode != tc.want || !strings.Contains(body, tc.wantInErr) {
			t.Errorf("GET %s: %d %s, want %d naming %q", tc.path, resp.StatusCode, body, tc.want, tc.wantInErr)
		}
	}
	q := fh.traffic[0]
	if q.Customer != "acme" || q.Subnet != "10.0.0.0/24" || q.Direction != "outbound" || q.Metric != "pps" ||
		!q.From.Equal(time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)) || q.To.Sub(q.From) != 2*time.Hour {
		t.Fatalf("traffic query %+v", q)
	}
	if c := fh.capacity[0]; c.Days != 90 || c.Customer != "acme" || c.To.Hour() != 12 {
		t.Fatalf("capacity query %+v", c)
	}
	if fh.subnets[0] != "203.0|3|5" {
		t.Fatalf("subnets query %s", fh.subnets[0])
	}
	// Defaults: the last 6 hours, inbound, bps.
	get(t, srv, roToken, "/api/v1/traffic?customer=acme")
	if q := fh.traffic[len(fh.traffic)-1]; q.Direction != "inbound" || q.Metric != "bps" || q.To.Sub(q.From) != 6*time.Hour {
		t.Fatalf("defaults %+v", q)
	}
	// The incident's customer comes from the alerter's state.
	get(t, srv, roToken, "/api/v1/incidents/inc-1/history")
	get(t, srv, roToken, "/api/v1/incidents/gone/history?customer=globex")
	if fh.incident[0] != "inc-1|acme" || fh.incident[1] != "gone|globex" {
		t.Fatalf("incident history asked %v", fh.incident)
	}
}

func TestClickHouseDownKeepsIncidents(t *testing.T) {
	cases := []struct {
		name   string
		opts   []Option
		status int
		inErr  string
	}{
		{"unavailable", []Option{WithHistory(&fakeHistory{err: fmt.Errorf("%w: dial tcp 127.0.0.1:9000: connection refused", history.ErrUnavailable)})},
			503, "connection refused"},
		{"console disabled", nil, 503, "console.enabled"},
		{"bad question", []Option{WithHistory(&fakeHistory{err: fmt.Errorf("%w: metric: nope", history.ErrBadRequest)})}, 400, "metric"},
		{"query bug", []Option{WithHistory(&fakeHistory{err: fmt.Errorf("traffic query failed: Missing columns")})}, 500, "Missing columns"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := newConsoleServer(t, tc.opts...)
			for _, p := range consolePaths {
				resp, body := get(t, srv, roToken, p)
				if resp.StatusCode != tc.status || !strings.Contains(body, tc.inErr) ||
					!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
					t.Errorf("GET %s: %d %s %q, want %d JSON naming %q", p, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.status, tc.inErr)
				}
				if tc.status == 503 && !strings.Contains(body, `"unavailable": "clickhouse"`) {
					t.Errorf("GET %s: 503 without the unavailable marker: %s", p, body)
				}
			}
			// The alerter's own state still answers.
			if resp, body := get(t, srv, roToken, "/api/v1/incidents?state=open"); resp.StatusCode != 200 || !strings.Contains(body, "inc-1") {
				t.Fatalf("incidents with ClickHouse %s: %d %s", tc.name, resp.StatusCode, body)
			}
			if resp, _ := get(t, srv, roToken, "/api/v1/incidents/inc-1"); resp.StatusCode != 200 {
				t.Fatalf("incident page data: %d", resp.StatusCode)
			}
		})
	}
}

func TestCapacityCSV(t *testing.T) {
	srv, _ := newConsoleServer(t, WithHistory(&fakeHistory{}))
	resp, body := get(t, srv, roToken, "/api/v1/capacity.csv?days=30")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" ||
		!strings.Contains(resp.Header.Get("Content-Disposition"), `filename="flowsentry-capacity-30d.csv"`) {
		t.Fatalf("%d %v", resp.StatusCode, resp.Header)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{CapacityCSVHeader,
		{"acme", "10.0.0.0/24", "inbound", "1234.500", "2000.000", "100.250", "987654", "42", "80.000", "70.000", "7", "-12.50",
			"2026-10-21T00:00:00Z", "2026-11-20T00:00:00Z"},
		// A name that a spreadsheet would run as a formula is quoted.
		{"'=cmd|' /C calc'!A0", "10.0.1.0/24", "outbound", "0.000", "0.000", "0.000", "0", "0", "0.000", "0.000", "7", "",
			"2026-10-21T00:00:00Z", "2026-11-20T00:00:00Z"},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("csv\n got %q\nwant %q", rows, want)
	}
}

func TestIncidentFiltersAndSummary(t *testing.T) {
	srv, e, _ := newServer(t)
	e.Handle(&pb.AnomalyEvent{Id: "inc-2", Kind: pb.AnomalyEvent_START, Customer: "acme", Subnet: "10.0.1.0/24",
		Class: "udp_flood", Severity: pb.Severity_SEVERITY_WARNING, Metric: "pps_udp", Unit: "pps", Observed: 2e6, Expected: 1e4,
		Fingerprint: &pb.Fingerprint{Mitigation: &pb.Mitigation{DstPrefix: "10.0.1.10/32", Protocols: []uint32{17}, Action: "discard"}}})
	cases := []struct {
		query string
		want  []string
	}{
		{"", []string{"inc-1", "inc-2"}},
		{"?class=udp_flood", []string{"inc-2"}},
		{"?severity=critical", []string{"inc-1"}},
		{"?class=syn_flood&severity=warning", nil},
		{"?customer=acme&class=syn_flood", []string{"inc-1"}},
	}
	for _, tc := range cases {
		code, body := call(t, srv, roToken, "GET", "/api/v1/incidents"+tc.query, "")
		var ids []string
		for _, in := range body["incidents"].([]any) {
			ids = append(ids, in.(map[string]any)["id"].(string))
		}
		if code != 200 || !sameSet(ids, tc.want) {
			t.Errorf("incidents%s: %d %v, want %v", tc.query, code, ids, tc.want)
		}
	}
	code, body := call(t, srv, roToken, "GET", "/api/v1/incidents/inc-2", "")
	sum, _ := body["summary"].(map[string]any)
	if code != 200 || sum["mitigation"] != "dst 10.0.1.10/32 proto [17] then discard" ||
		!strings.HasPrefix(sum["title"].(string), "[WARNING] udp_flood on acme 10.0.1.0/24") ||
		!strings.Contains(sum["sql"].(string), "FROM flowsentry.flows") || !strings.Contains(sum["figures"].(string), "200x expected") {
		t.Fatalf("summary %d %v", code, sum)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestClickHouseDownReal: the real store against a port nobody listens
// on: every console endpoint is a 503 JSON error naming ClickHouse, the
// incidents from the alerter's state are still served.
func TestClickHouseDownReal(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cfg := history.Default()
	cfg.ClickHouse.Addr = []string{addr}
	t.Setenv("FLOWSENTRY_CH_ANALYST_PASSWORD", "analyst-dev")
	srv, _ := newConsoleServer(t, WithHistory(history.Open(cfg, nil)))
	for _, p := range consolePaths {
		start := time.Now()
		resp, body := get(t, srv, roToken, p)
		if resp.StatusCode != 503 || !strings.Contains(body, "clickhouse unavailable") || !strings.Contains(body, addr) {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, body)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("GET %s took %s", p, d)
		}
	}
	if resp, body := get(t, srv, roToken, "/api/v1/incidents"); resp.StatusCode != 200 || !strings.Contains(body, "inc-1") {
		t.Fatalf("incidents with ClickHouse down: %d %s", resp.StatusCode, body)
	}
}
