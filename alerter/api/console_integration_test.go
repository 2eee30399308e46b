//go:build integration

package api

import (
	"encoding/csv"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/alerter/console/consoletest"
	"github.com/packetworks/flowsentry/alerter/console/history"
)

// TestCapacityCSVFromClickHouse: the CSV export of rows the test inserted
// into the real ClickHouse, read as the analyst user, holds the figures
// computed from those rows.
func TestCapacityCSVFromClickHouse(t *testing.T) {
	f := consoletest.Seed(t)
	srv, _ := newConsoleServer(t, WithHistory(consoletest.AnalystStore(t)))
	resp, body := get(t, srv, roToken, "/api/v1/capacity.csv?days=30&customer="+f.Customer+"&to="+f.To.Format(time.RFC3339))
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(rows) != 3 || strings.Join(rows[0], ",") != strings.Join(CapacityCSVHeader, ",") {
		t.Fatalf("csv %q %v", rows, err)
	}
	col := map[string]int{}
	for i, c := range rows[0] {
		col[c] = i
	}
	num := func(r []string, c string) float64 {
		v, err := strconv.ParseFloat(r[col[c]], 64)
		if err != nil {
			t.Fatalf("%s %q: %v", c, r[col[c]], err)
		}
		return v
	}
	near := func(a, b float64) bool { return a-b < 0.0006 && b-a < 0.0006 } // CSV keeps 3 decimals
	for _, r := range rows[1:] {
		want := consoletest.ExpectedCapacity(f, r[col["direction"]])
		if r[col["customer"]] != f.Customer || r[col["subnet"]] != f.Subnet ||
			!near(num(r, "p95_bps"), want.P95BPS) || !near(num(r, "peak_bps"), want.PeakBPS) ||
			uint64(num(r, "bytes")) != want.Bytes || uint64(num(r, "active_minutes")) != want.ActiveMinutes ||
			!near(num(r, "first_bps"), want.FirstBPS) || !near(num(r, "last_bps"), want.LastBPS) ||
			!near(num(r, "avg_bps"), float64(want.Bytes)*8/(30*86400)) {
			t.Errorf("row %q\nwant %+v", r, want)
		}
		switch g := r[col["growth_pct"]]; {
		case want.GrowthPct == nil && g != "":
			t.Errorf("%s: growth %q, want none", r[col["direction"]], g)
		case want.GrowthPct != nil && g != strconv.FormatFloat(*want.GrowthPct, 'f', 2, 64):
			t.Errorf("%s: growth %q, want %.2f", r[col["direction"]], g, *want.GrowthPct)
		}
	}

	// The JSON the chart draws: SrcA and SrcB's bytes of minute 4, in bps.
	q := "/api/v1/traffic?customer=" + f.Customer + "&subnet=" + f.Subnet + "&from=" + f.Recent.Format(time.RFC3339) +
		"&to=" + f.Recent.Add(10*time.Minute).Format(time.RFC3339)
	resp, body = get(t, srv, roToken, q)
	var tr history.Traffic
	if err := json.Unmarshal([]byte(body), &tr); err != nil || resp.StatusCode != 200 || len(tr.Points) != consoletest.RecentMinutes {
		t.Fatalf("traffic %d %v %s", resp.StatusCode, err, body)
	}
	if got, want := tr.Points[4].V, float64(consoletest.RecentBytes(4))*8/60; got != want {
		t.Fatalf("minute 4: %g bps, want %g", got, want)
	}
}
