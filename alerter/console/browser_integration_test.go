//go:build integration

package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/packetworks/flowsentry/alerter/api"
	"github.com/packetworks/flowsentry/alerter/console"
	"github.com/packetworks/flowsentry/alerter/console/consoletest"
	"github.com/packetworks/flowsentry/alerter/console/history"
	"github.com/packetworks/flowsentry/alerter/dispatch"
	"github.com/packetworks/flowsentry/alerter/notify"
	"github.com/packetworks/flowsentry/alerter/route"
	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/pb"
)

const operatorToken = "console-operator-token-0123456789"

// chromium finds Debian's chromium: missing, the test fails in CI and is
// skipped elsewhere.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if itest.InCI() {
		t.Fatal("chromium is not installed (CI: apt-get install chromium)")
	}
	t.Skip("chromium not installed (apt-get install chromium)")
	return ""
}

func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("FLOWSENTRY_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// alerterServer is the alerter's HTTP surface as main wires it: the console
// and the API on one mux, an engine holding the fixture's incident, and
// the given history store.
func alerterServer(t *testing.T, f *consoletest.Fixture, store api.History) *httptest.Server {
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
	start := f.Recent.Add(time.Minute)
	e.Handle(&pb.AnomalyEvent{Id: f.IncidentID, Kind: pb.AnomalyEvent_START, Customer: f.Customer, Subnet: f.Subnet,
		Direction: pb.Direction_DIRECTION_INBOUND, Class: "udp_flood", Severity: pb.Severity_SEVERITY_CRITICAL,
		StartedAtNs: uint64(start.UnixNano()), UpdatedAtNs: uint64(start.Add(4 * time.Minute).UnixNano()),
		Metric: "pps_udp", Unit: "pps", Observed: 15, Expected: 2, Score: 12.5, PeakBps: 80_000, PeakPps: 150,
		Fingerprint: &pb.Fingerprint{
			TopSources:   []*pb.TopItem{{Key: consoletest.SrcA, Packets: 5500, Bytes: 3_300_000, Share: 0.98}},
			TopDstPorts:  []*pb.TopItem{{Key: "53", Packets: 5500, Share: 0.98}},
			TopProtocols: []*pb.TopItem{{Key: "udp", Packets: 5500, Share: 0.98}},
			Mitigation: &pb.Mitigation{DstPrefix: f.Dst + "/32", Protocols: []uint32{17}, SrcPorts: nil, DstPorts: []uint32{53},
				Action: "rate-limit 4000"},
		}})
	tokens, err := api.NewTokens([]api.Token{{Name: "olga", Role: api.RoleOperator, Token: operatorToken}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	console.Register(mux)
	mux.Handle(api.Prefix, api.New(e, tokens, slog.New(slog.NewTextHandler(io.Discard, nil)), api.WithHistory(store)))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// chartInfo is what the page drew, read back from the SVG.
type chartInfo struct {
	Points   int    `json:"points"`
	NonZero  int    `json:"nonzero"`
	Band     int    `json:"band"`
	TrafficD int    `json:"trafficD"` // M/L commands of the traffic path
	BandD    int    `json:"bandD"`    // length of the band path
	Unit     string `json:"unit"`
}

func readChart(sel string) chromedp.Action[chartInfo] {
	return chromedp.Evaluate[chartInfo](`(() => {
		const s = document.querySelector(` + "`" + sel + "`" + `);
		const tr = s.querySelector('path.traffic'), band = s.querySelector('path.band');
		return {points: +s.dataset.points, nonzero: +s.dataset.nonzero, band: +s.dataset.band, unit: s.dataset.unit,
			trafficD: tr ? (tr.getAttribute('d').match(/[ML]/g) || []).length : 0, bandD: band ? band.getAttribute('d').length : 0};
	})()`)
}

func count(sel string) chromedp.Action[int] {
	return chromedp.Evaluate[int](`document.querySelectorAll(` + "`" + sel + "`" + `).length`)
}

// TestConsoleInBrowser drives the console in headless Chromium against the
// alerter's handler, an incident in its state and the fixture's rows in the
// real ClickHouse: sign in, incidents, the incident page (chart with data
// and band, timeline, notifications, fingerprint), the subnet explorer, the
// capacity view and its CSV, a silence created and expired through the UI
// and checked through the API, and the incident page with ClickHouse down.
// Screenshots go to $FLOWSENTRY_ARTIFACTS (default: a temp dir).
func TestConsoleInBrowser(t *testing.T) {
	bin := chromium(t)
	f := consoletest.Seed(t)
	srv := alerterServer(t, f, consoletest.AnalystStore(t))
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	down := history.Default()
	down.ClickHouse.Addr = []string{closed}
	down.ClickHouse.Password.Env = "PATH" // any set variable: the server is what is missing
	srvDown := alerterServer(t, f, history.Open(down, nil))
	dir := artifacts(t)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(bin), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 1100))
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	// Uncaught script errors fail the test.
	var mu sync.Mutex
	var exceptions []string
	messages := chromedp.Console(bctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.IsException() {
				mu.Lock()
				exceptions = append(exceptions, m.String())
				mu.Unlock()
			}
		}
	}()

	do := func(step string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, actions...); err != nil {
			shot(t, bctx, dir, "failed-"+step)
			t.Fatalf("%s: %v", step, err)
		}
	}
	run := func(step string, a chromedp.Action[string]) string {
		t.Helper()
		v, err := chromedp.Run(bctx, a)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		return v
	}
	poll := func(step, expr string) {
		t.Helper()
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(100*time.Millisecond),
			chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			shot(t, bctx, dir, "failed-"+step)
			t.Fatalf("%s: waiting for %s: %v", step, expr, err)
		}
	}
	signIn := func(base, path string) {
		t.Helper()
		do("sign in", chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS("#token")),
			chromedp.SendKeys(chromedp.CSS("#token"), operatorToken), chromedp.Click(chromedp.CSS("#login button")),
			chromedp.WaitVisible(chromedp.CSS("#me")))
	}

	// Incidents.
	signIn(srv.URL, "/incidents")
	do("incidents", chromedp.WaitVisible(chromedp.CSS("table.incidents")))
	if me := run("whoami", chromedp.Text(chromedp.CSS("#me"))); me != "olga (operator)" {
		t.Fatalf("signed in as %q", me)
	}
	shot(t, bctx, dir, "01-incidents")

	// The incident page: chart with data and band, timeline, notifications.
	link := fmt.Sprintf(`table.incidents a[href="/incidents/%s"]`, f.IncidentID)
	do("open incident", chromedp.Click(chromedp.CSS(link)), chromedp.WaitVisible(chromedp.CSS("#incident-chart svg.chart")),
		chromedp.WaitVisible(chromedp.CSS("#timeline table.events")))
	c, err := chromedp.Run(bctx, readChart("#incident-chart svg.chart"))
	if err != nil {
		t.Fatal(err)
	}
	// pps_udp (the incident's metric): SrcA's ten minutes, two snapshots.
	if c.NonZero != consoletest.RecentMinutes || c.Points < c.NonZero || c.TrafficD != c.Points || c.Band != 2 || c.BandD == 0 || c.Unit != "pps" {
		t.Fatalf("incident chart %+v: want %d minutes with traffic, every point drawn, a band from 2 snapshots", c, consoletest.RecentMinutes)
	}
	if n, _ := chromedp.Run(bctx, count("#timeline table.events tbody tr")); n != 3 {
		t.Fatalf("timeline shows %d events, want 3 (START, UPDATE, END)", n)
	}
	if n, _ := chromedp.Run(bctx, count("#timeline table.notifications tbody tr")); n != 4 {
		t.Fatalf("%d notification rows, want 4", n)
	}
	if m := run("mitigation", chromedp.Text(chromedp.CSS("#mitigation"))); m != "dst "+f.Dst+"/32 proto [17] dst-port [53] then rate-limit 4000" {
		t.Fatalf("mitigation %q", m)
	}
	if fp := run("fingerprint", chromedp.Text(chromedp.CSS("#fingerprint"))); !strings.Contains(fp, consoletest.SrcA) {
		t.Fatalf("fingerprint %q", fp)
	}
	shot(t, bctx, dir, "02-incident")

	// Subnet explorer, from the incident: bps chart and top talkers.
	do("explore", chromedp.Click(chromedp.CSS(`.actions a[href^="/subnets"]`)), chromedp.WaitVisible(chromedp.CSS("#explore-chart svg.chart")),
		chromedp.WaitVisible(chromedp.CSS("#talkers table")))
	if c, err = chromedp.Run(bctx, readChart("#explore-chart svg.chart")); err != nil || c.NonZero != consoletest.RecentMinutes || c.Band != 3 || c.Unit != "bps" {
		t.Fatalf("explorer chart %+v %v: want %d minutes of bps and 3 snapshots", c, err, consoletest.RecentMinutes)
	}
	if tk := run("talkers", chromedp.Text(chromedp.CSS("#talkers"))); !strings.Contains(tk, consoletest.SrcA) ||
		!strings.Contains(tk, consoletest.SrcB) || !strings.Contains(tk, "17/53") {
		t.Fatalf("talkers %q", tk)
	}
	shot(t, bctx, dir, "03-subnet-explorer")

	// Capacity for the fixture's customer, and its CSV.
	do("capacity", chromedp.Click(chromedp.CSS(`header nav a[href="/capacity"]`)), chromedp.WaitVisible(chromedp.CSS("#cap-customer")),
		chromedp.SendKeys(chromedp.CSS("#cap-customer"), f.Customer), chromedp.Click(chromedp.CSS("#capacity-filters button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("table.capacity")))
	if n, _ := chromedp.Run(bctx, count("table.capacity tbody tr")); n != 2 {
		t.Fatalf("capacity shows %d rows, want 2 (inbound, outbound)", n)
	}
	do("csv", chromedp.Click(chromedp.CSS("#csv")))
	poll("csv", `document.querySelector('#csv-note').textContent.startsWith('saved')`)
	shot(t, bctx, dir, "04-capacity")

	// A silence created in the UI is in the alerter, then expired from the UI.
	do("silence", chromedp.Click(chromedp.CSS(`header nav a[href="/silences"]`)), chromedp.WaitVisible(chromedp.CSS("#silence-form")),
		chromedp.SetValue(chromedp.CSS("#s-matchers"), "customer="+f.Customer+"\nclass=udp_flood"),
		chromedp.SendKeys(chromedp.CSS("#s-comment"), "browser test CHG-1"), chromedp.Click(chromedp.CSS("#silence-form button[type=submit]")))
	poll("silence", `!!document.querySelector('#silence-result').dataset.id`)
	id := run("silence id", chromedp.Evaluate[string](`document.querySelector('#silence-result').dataset.id`))
	s := getSilence(t, srv.URL, id)
	if s.CreatedBy != "olga" || s.Status != "active" || strings.Join(s.Matchers, ",") != "customer="+f.Customer+",class=udp_flood" ||
		s.Comment != "browser test CHG-1" || s.EndsAt.Sub(s.StartsAt).Round(time.Minute) != 2*time.Hour {
		t.Fatalf("silence in the API: %+v", s)
	}
	shot(t, bctx, dir, "05-silences")
	do("expire", chromedp.Click(chromedp.CSS(fmt.Sprintf(`button.expire[data-id="%s"]`, id))))
	poll("expire", `document.querySelector('#silence-result').textContent.includes('expired')`)
	if s := getSilence(t, srv.URL, id); s.Status != "expired" {
		t.Fatalf("silence after Expire: %+v", s)
	}

	// ClickHouse down: the incident from the alerter's state is still there,
	// the chart says why it is missing.
	signIn(srvDown.URL, "/incidents/"+f.IncidentID)
	do("clickhouse down", chromedp.WaitVisible(chromedp.CSS("#incident-chart .error.unavailable")),
		chromedp.WaitVisible(chromedp.CSS("#timeline .error.unavailable")), chromedp.WaitVisible(chromedp.CSS("dl.facts")))
	if msg := run("down message", chromedp.Text(chromedp.CSS("#incident-chart .error"))); !strings.Contains(msg, "ClickHouse is unavailable") {
		t.Fatalf("chart message %q", msg)
	}
	shot(t, bctx, dir, "06-clickhouse-down")

	mu.Lock()
	defer mu.Unlock()
	if len(exceptions) > 0 {
		t.Fatalf("uncaught script errors:\n%s", strings.Join(exceptions, "\n"))
	}
	t.Logf("screenshots in %s", dir)
}

type silence struct {
	Matchers  []string  `json:"matchers"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	CreatedBy string    `json:"created_by"`
	Comment   string    `json:"comment"`
	Status    string    `json:"status"`
}

func getSilence(t *testing.T, base, id string) silence {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/v1/silences/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s silence
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET silence %s: %d %v", id, resp.StatusCode, err)
	}
	return s
}

func shot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, "console-"+name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
