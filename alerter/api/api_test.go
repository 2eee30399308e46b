package api

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/alerter/dispatch"
	"github.com/packetworks/flowsentry/alerter/notify"
	"github.com/packetworks/flowsentry/alerter/route"
	"github.com/packetworks/flowsentry/schemas/pb"
)

const (
	opToken = "operator-token-0123456789"
	roToken = "readonly-token-0123456789"
)

func newServer(t *testing.T) (*httptest.Server, *dispatch.Engine, *bytes.Buffer) {
	t.Helper()
	tree, err := route.Compile(route.Config{Receiver: "slack"}, []string{"slack"})
	if err != nil {
		t.Fatal(err)
	}
	e, err := dispatch.New(dispatch.Options{Config: dispatch.DefaultConfig(), Tree: tree,
		Receivers: []*notify.Receiver{{Name: "slack", Notifier: &notify.Slack{URL: "http://127.0.0.1:1/"}}},
		Log:       slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.Handle(&pb.AnomalyEvent{Id: "inc-1", Kind: pb.AnomalyEvent_START, Customer: "acme", Subnet: "10.0.0.0/24",
		Class: "syn_flood", Severity: pb.Severity_SEVERITY_CRITICAL})
	tokens, err := NewTokens([]Token{{Name: "olga", Role: RoleOperator, Token: opToken}, {Name: "rita", Role: RoleReadOnly, Token: roToken}})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	srv := httptest.NewServer(New(e, tokens, slog.New(slog.NewJSONHandler(&logs, nil))))
	t.Cleanup(srv.Close)
	return srv, e, &logs
}

// send makes one call and returns the response and its whole body.
func send(t *testing.T, srv *httptest.Server, token, method, path, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func call(t *testing.T, srv *httptest.Server, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	resp, b := send(t, srv, token, method, path, body)
	var out map[string]any
	_ = json.Unmarshal([]byte(b), &out)
	return resp.StatusCode, out
}

func TestAuthAndRoles(t *testing.T) {
	srv, _, logs := newServer(t)
	silence := `{"matchers":["customer=acme"],"ends_at":"` + time.Now().Add(time.Hour).UTC().Format(time.RFC3339) + `","comment":"upgrade"}`
	cases := []struct {
		token, method, path, body string
		want                      int
	}{
		{"", "GET", "/api/v1/incidents", "", 401},
		{"wrong-token-xxxxxxxxxxxxxx", "GET", "/api/v1/incidents", "", 401},
		{"", "GET", "/api/v1/nothing", "", 401},
		{roToken, "GET", "/api/v1/incidents", "", 200},
		{roToken, "GET", "/api/v1/incidents/inc-1", "", 200},
		{roToken, "GET", "/api/v1/incidents/nope", "", 404},
		{roToken, "POST", "/api/v1/incidents/inc-1/ack", `{"comment":"x"}`, 403},
		{roToken, "POST", "/api/v1/silences", silence, 403},
		{roToken, "DELETE", "/api/v1/silences/x", "", 403},
		{roToken, "GET", "/api/v1/silences", "", 200},
		{roToken, "GET", "/api/v1/nothing", "", 404},
		{opToken, "POST", "/api/v1/incidents/nope/ack", "", 404},
		{opToken, "POST", "/api/v1/silences", `{"matchers":["colour=red"],"comment":"x"}`, 422},
		{opToken, "POST", "/api/v1/silences", `{"bogus":1}`, 400},
		{opToken, "DELETE", "/api/v1/silences/unknown", "", 404},
	}
	for _, tc := range cases {
		if got, body := call(t, srv, tc.token, tc.method, tc.path, tc.body); got != tc.want {
			t.Errorf("%s %s as %q: %d, want %d (%v)", tc.method, tc.path, tc.token, got, tc.want, body)
		}
	}
	if !strings.Contains(logs.String(), `"caller":"rita"`) || !strings.Contains(logs.String(), `"status":403`) ||
		!strings.Contains(logs.String(), `"caller":"-"`) {
		t.Fatalf("calls not logged with caller:\n%s", logs.String())
	}
}

func TestIncidentAndSilenceLifecycle(t *testing.T) {
	srv, e, _ := newServer(t)
	code, body := call(t, srv, roToken, "GET", "/api/v1/incidents?state=open", "")
	if code != 200 || len(body["incidents"].([]any)) != 1 {
		t.Fatalf("list %d %v", code, body)
	}
	if code, _ := call(t, srv, roToken, "GET", "/api/v1/incidents?state=weird", ""); code != 400 {
		t.Fatalf("bad filter %d", code)
	}
	code, body = call(t, srv, opToken, "POST", "/api/v1/incidents/inc-1/ack", `{"comment":"looking"}`)
	ack := body["incident"].(map[string]any)["ack"].(map[string]any)
	if code != 200 || ack["by"] != "olga" || ack["comment"] != "looking" {
		t.Fatalf("ack %d %v", code, body)
	}
	if in, _, _ := e.Incident("inc-1"); in.Ack == nil || in.Ack.By != "olga" {
		t.Fatal("ack not in the engine")
	}
	ends := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	code, body = call(t, srv, opToken, "POST", "/api/v1/silences",
		`{"matchers":["customer=acme","severity>=warning"],"ends_at":"`+ends+`","comment":"router upgrade CHG-7"}`)
	if code != 201 || body["created_by"] != "olga" || body["status"] != "active" || body["id"] == "" {
		t.Fatalf("create %d %v", code, body)
	}
	id := body["id"].(string)
	code, body = call(t, srv, opToken, "PUT", "/api/v1/silences/"+id,
		`{"matchers":["customer=acme"],"ends_at":"`+ends+`","comment":"narrowed"}`)
	if code != 200 || body["comment"] != "narrowed" {
		t.Fatalf("update %d %v", code, body)
	}
	code, body = call(t, srv, opToken, "DELETE", "/api/v1/silences/"+id, "")
	if code != 200 || body["status"] != "expired" {
		t.Fatalf("expire %d %v", code, body)
	}
	if code, body := call(t, srv, roToken, "GET", "/api/v1/silences?active=true", ""); code != 200 || len(body["silences"].([]any)) != 0 {
		t.Fatalf("active silences %v", body)
	}
	code, body = call(t, srv, opToken, "POST", "/api/v1/silences",
		`{"matchers":["customer=acme"],"starts_at":"2030-01-01T00:00:00Z","ends_at":"2029-01-01T00:00:00Z","comment":"x"}`)
	if code != 422 || !strings.Contains(body["error"].(string), "silence.ends_at") {
		t.Fatalf("bad window %d %v", code, body)
	}
}

func TestLoadTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	_ = os.WriteFile(path, []byte("- name: olga\n  role: operator\n  token: "+opToken+"\n"), 0o644)
	if err := FileIsPrivate(path); err == nil {
		t.Fatal("0644 tokens file not flagged")
	}
	tk, err := LoadTokens(path, "rita:read-only:"+roToken)
	if err != nil || tk.Len() != 2 {
		t.Fatalf("%v %d", err, tk.Len())
	}
	if c, ok := tk.Lookup(roToken); !ok || c.Role != RoleReadOnly {
		t.Fatal("env token missing")
	}
	for _, bad := range []string{"a:admin:" + opToken, "a:operator:short", "nocolons"} {
		if _, err := LoadTokens("", bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
