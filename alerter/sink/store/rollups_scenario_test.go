package store

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/portability"
)

// The rollup scenario, in SQL that both servers take: rows inserted while
// both views ran; then flows_1h_mv is gone (an insert whose flows and
// flows_1m parts survived a crash, its flows_1h part not); then
// flows_1m_mv is gone too (an insert whose flows part alone survived);
// and one flows_1m row written by hand (a cell holding more than flows).
const (
	flowsCols = "INSERT INTO {db}.flows (time_received, customer, subnet, direction, proto, bytes, packets, kafka_partition, kafka_offset, kafka_index) VALUES "
	cellA     = "'a', '10.0.0.0/24', 'inbound', 6"
	cellB     = "'b', '10.0.1.0/24', 'outbound', 17"
	cellC     = "'c', '10.0.2.0/24', 'inbound', 1"
)

var scenarioStatements = []string{
	flowsCols + "('2026-11-27 10:00:01', " + cellA + ", 100, 1, 65000, 1, 0), ('2026-11-27 10:00:01', " + cellA + ", 50, 2, 65000, 1, 1), " +
		"('2026-11-27 10:00:02', " + cellB + ", 300, 3, 65000, 2, 0), ('2026-11-27 10:00:03', " + cellC + ", 40, 4, 65000, 3, 0)",
	"DROP TABLE {db}.flows_1h_mv",
	flowsCols + "('2026-11-27 10:00:02', " + cellB + ", 1000, 10, 65000, 4, 0), ('2026-11-27 10:59:59', " + cellB + ", 2, 1, 65000, 4, 1)",
	"DROP TABLE {db}.flows_1m_mv",
	flowsCols + "('2026-11-27 10:00:01', " + cellA + ", 7, 1, 65000, 5, 0), ('2026-11-27 10:00:30', " + cellA + ", 20, 2, 65000, 5, 1), " +
		"('2026-11-27 11:15:00', " + cellA + ", 5, 1, 65000, 5, 2)",
	"INSERT INTO {db}.flows_1m (minute, customer, subnet, direction, proto, bytes, packets, flows, `secondsMap.second`, `secondsMap.bytes`, `secondsMap.packets`) " +
		"VALUES ('2026-11-27 10:00:00', " + cellC + ", 5, 1, 1, [3], [5], [1])",
}

var scenarioKeys = []Key{{"a", "10.0.0.0/24"}, {"b", "10.0.1.0/24"}, {"c", "10.0.2.0/24"}}

// The whole day (the literal times are the server's local time).
var scenarioMin, scenarioMax = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 23, 0, 0, 0, time.UTC)

// What the servers must answer before any repair: flows minus flows_1m
// (a is short by the last insert, c over by the hand-written row), and
// flows_1m minus flows_1h (b is short by the insert without flows_1h; a's
// last insert is missing from both, so no difference there yet; c's extra
// flows_1m row shows here too, which is why RepairRollups keeps the hours
// of an over flows_1m cell out of the repair).
const (
	wantDiff1m = "2026-11-27 10:00:00\ta\t10.0.0.0/24\tinbound\t6\t27\t3\t2\t[1,30]\t[7,20]\t[1,2]\n" +
		"2026-11-27 10:00:00\tc\t10.0.2.0/24\tinbound\t1\t-5\t-1\t-1\t[3]\t[-5]\t[-1]\n" +
		"2026-11-27 11:15:00\ta\t10.0.0.0/24\tinbound\t6\t5\t1\t1\t[0]\t[5]\t[1]\n"
	wantDiff1h = "2026-11-27 10:00:00\tb\t10.0.1.0/24\toutbound\t17\t1002\t11\t2\t[0,59]\t[1000,2]\t[10,1]\n" +
		"2026-11-27 10:00:00\tc\t10.0.2.0/24\tinbound\t1\t5\t1\t1\t[0]\t[5]\t[1]\n"
)

func scenario(db string) []string {
	out := make([]string, len(scenarioStatements))
	for i, s := range scenarioStatements {
		out[i] = strings.ReplaceAll(s, "{db}", db)
	}
	return out
}

func diffQueries(t *testing.T, db string) []string {
	t.Helper()
	var qs []string
	for _, table := range []string{"flows_1m", "flows_1h"} {
		q, err := RollupDiffSQL(db, table, scenarioMin, scenarioMax, scenarioKeys)
		if err != nil {
			t.Fatal(err)
		}
		qs = append(qs, q)
	}
	return qs
}

// TestRollupDiffOnCurrentClickHouse: the comparison query runs on a
// current ClickHouse (chdb) and finds exactly the scenario's differences;
// TestRollupDiffOnServer (integration) expects the same text from 18.16.
func TestRollupDiffOnCurrentClickHouse(t *testing.T) {
	version, results, err := portability.Chdb(scenario("flowsentry"), diffQueries(t, "flowsentry"))
	if errors.Is(err, portability.ErrNoChdb) {
		if itest.InCI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{wantDiff1m, wantDiff1h} {
		if results[i] != want {
			t.Errorf("diff %d on chdb %s:\n got %q\nwant %q", i, version, results[i], want)
		}
	}
}

func TestRollupDiffSQLRefusesUnknownTable(t *testing.T) {
	if _, err := RollupDiffSQL("flowsentry", "flows", scenarioMin, scenarioMax, nil); err == nil {
		t.Fatal("flows is not a rollup table; want an error")
	}
}
