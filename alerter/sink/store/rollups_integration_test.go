//go:build integration

package store

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/packetworks/flowsentry/alerter/sink/sinktest"
	"github.com/packetworks/flowsentry/schemas/portability"
)

func httpBase() string {
	if b := os.Getenv("FLOWSENTRY_CLICKHOUSE_HTTP"); b != "" {
		return b
	}
	return "http://127.0.0.1:8123"
}

func httpQuery(t *testing.T, q string) string {
	t.Helper()
	out, err := portability.HTTP(httpBase(), q)
	if err != nil {
		t.Fatalf("%.80s: %v", q, err)
	}
	return out
}

// rawVsRollup returns, per cell of the given customers, what flows holds and
// what the rollup holds, in the same text form: bytes, packets, flows and
// the per-second (per-minute) bytes and packets. Written independently of
// RollupDiffSQL, so that a wrong repair cannot hide behind a wrong check.
func rawVsRollup(t *testing.T, db, table, customers string) (raw, rollup string) {
	t.Helper()
	cell, floor, unit, nested := "minute", "toStartOfMinute", "toSecond", "secondsMap"
	if table == "flows_1h" {
		cell, floor, unit, nested = "hour", "toStartOfHour", "toMinute", "minutesMap"
	}
	raw = httpQuery(t, `SELECT c, customer, subnet, direction, proto, sum(b), sum(p), sum(f),
  arrayMap(x -> tupleElement(x, 1), arraySort(groupArray((u, b, p)))),
  arrayMap(x -> tupleElement(x, 2), arraySort(groupArray((u, b, p)))),
  arrayMap(x -> tupleElement(x, 3), arraySort(groupArray((u, b, p))))
FROM (SELECT `+floor+`(time_received) AS c, customer, subnet, direction, proto, `+unit+`(time_received) AS u,
        sum(bytes) AS b, sum(packets) AS p, count() AS f
      FROM `+db+`.flows WHERE customer IN (`+customers+`) GROUP BY c, customer, subnet, direction, proto, u)
GROUP BY c, customer, subnet, direction, proto ORDER BY c, customer, subnet, direction, proto`)
	k := nested + "." + map[string]string{"flows_1m": "second", "flows_1h": "minute"}[table]
	rollup = httpQuery(t, `SELECT `+cell+`, customer, subnet, direction, proto, sum(bytes), sum(packets), sum(flows),
  tupleElement(sumMap(`+k+`, `+nested+`.bytes), 1), tupleElement(sumMap(`+k+`, `+nested+`.bytes), 2),
  tupleElement(sumMap(`+k+`, `+nested+`.packets), 2)
FROM `+db+`.`+table+` WHERE customer IN (`+customers+`)
GROUP BY `+cell+`, customer, subnet, direction, proto ORDER BY `+cell+`, customer, subnet, direction, proto`)
	return raw, rollup
}

// TestRollupDiffOnServer: the comparison query finds the scenario's
// differences on the real server (18.16 here), the same text as on chdb.
// TestRepairRollups then repairs them and checks cell by cell against flows.
func TestRepairRollups(t *testing.T) {
	conn, db := sinktest.Database(t)
	for _, s := range scenario(db) {
		httpQuery(t, s)
	}
	version := strings.TrimSpace(httpQuery(t, "SELECT version()"))
	qs := diffQueries(t, db)
	for i, want := range []string{wantDiff1m, wantDiff1h} {
		if got := httpQuery(t, qs[i]); got != want {
			t.Errorf("diff %d on %s:\n got %q\nwant %q", i, version, got, want)
		}
	}

	st := New(conn, db)
	ctx := context.Background()
	reps, err := st.RepairRollups(ctx, scenarioMin, scenarioMax, scenarioKeys)
	if err != nil {
		t.Fatal(err)
	}
	// flows_1m: a's two short minutes repaired, c's hand-written row left.
	// flows_1h: b's hour, a's two hours repaired; c's hour left (its
	// flows_1m cell is over).
	want := map[string][2]int{"flows_1m": {2, 1}, "flows_1h": {3, 1}}
	if len(reps) != 2 {
		t.Fatalf("reports %+v, want one per rollup table", reps)
	}
	for _, r := range reps {
		if w := want[r.Table]; r.Repaired != w[0] || len(r.Over) != w[1] {
			t.Errorf("%s: repaired %d cells, %d over; want %d and %d (%+v)", r.Table, r.Repaired, len(r.Over), w[0], w[1], r.Over)
		}
		for _, o := range r.Over {
			if o.Customer != "c" {
				t.Errorf("%s: cell of %s reported over", r.Table, o.Customer)
			}
		}
	}
	for _, table := range []string{"flows_1m", "flows_1h"} {
		raw, roll := rawVsRollup(t, db, table, "'a', 'b'")
		if raw != roll {
			t.Errorf("%s after the repair:\n flows  %q\n rollup %q", table, raw, roll)
		}
		if !strings.Contains(raw, "[1,30]\t[157,20]") && table == "flows_1m" {
			t.Errorf("flows_1m: a's 10:00 seconds not as inserted: %q", raw)
		}
		// c: flows_1m still holds the hand-written 5 bytes over flows (left
		// alone), and they were not copied into flows_1h, which matches flows.
		rawC, rollC := rawVsRollup(t, db, table, "'c'")
		if (table == "flows_1m") == (rawC == rollC) {
			t.Errorf("%s for c:\n flows  %q\n rollup %q", table, rawC, rollC)
		}
	}
	// The busiest second as the cookbook computes it, after the repair.
	if got := httpQuery(t, "SELECT arrayReduce('max', tupleElement(sumMap(secondsMap.second, secondsMap.bytes), 2)) FROM "+db+
		".flows_1m WHERE customer = 'a' AND minute = toDateTime('2026-11-27 10:00:00')"); got != "157\n" {
		t.Errorf("busiest second of a's 10:00 = %q, want 157 (100 + 50 + 7 at :01)", got)
	}

	// Again: nothing left to repair, nothing inserted.
	reps, err = st.RepairRollups(ctx, scenarioMin, scenarioMax, scenarioKeys)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		if r.Repaired != 0 {
			t.Errorf("second run repaired %d %s cells; want 0", r.Repaired, r.Table)
		}
	}
}
