//go:build integration

package cookbook

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/packetworks/flowsentry/alerter/sink/sinktest"
	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/portability"
)

var dump = flag.Bool("dump", false, "print every query's result (to review new expectations)")

func loadCookbook(t *testing.T) []Query {
	t.Helper()
	b, err := os.ReadFile("../../../docs/sql-cookbook.md")
	if err != nil {
		t.Fatal(err)
	}
	qs, err := Parse(string(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if _, ok := want[q.Number]; !ok {
			t.Errorf("query %d %q has no expected result in want", q.Number, q.Title)
		}
	}
	if len(want) != len(qs) {
		t.Errorf("want has %d results for %d queries", len(want), len(qs))
	}
	return qs
}

func check(t *testing.T, engine string, q Query, got string) {
	t.Helper()
	if *dump {
		fmt.Printf("=== %s query %d %s\n%s", engine, q.Number, q.Title, got)
	}
	if got != want[q.Number] {
		t.Errorf("%s, query %d %q:\n got %q\nwant %q", engine, q.Number, q.Title, got, want[q.Number])
	}
}

// TestCookbookOnServer runs every cookbook query on the real ClickHouse
// (18.16 here) in a database of its own holding testData.
func TestCookbookOnServer(t *testing.T) {
	qs := loadCookbook(t)
	_, db := sinktest.Database(t)
	base := os.Getenv("FLOWSENTRY_CLICKHOUSE_HTTP")
	if base == "" {
		base = "http://127.0.0.1:8123"
	}
	version, err := portability.HTTP(base, "SELECT version()")
	if err != nil {
		t.Fatalf("ClickHouse HTTP at %s: %v", base, err)
	}
	version = strings.TrimSpace(version)
	t.Logf("ClickHouse %s, database %s", version, db)
	for i, s := range testData {
		if _, err := portability.HTTP(base, sinktest.Rewrite(s, db)); err != nil {
			t.Fatalf("test data statement %d: %v", i+1, err)
		}
	}
	for _, q := range qs {
		got, err := portability.HTTP(base, sinktest.Rewrite(q.SQL, db))
		if err != nil {
			t.Errorf("query %d %q: %v", q.Number, q.Title, err)
			continue
		}
		check(t, "server "+version, q, got)
	}
}

// TestCookbookOnCurrentClickHouse runs the same queries on chdb.
func TestCookbookOnCurrentClickHouse(t *testing.T) {
	qs := loadCookbook(t)
	var sqls []string
	for _, q := range qs {
		sqls = append(sqls, q.SQL)
	}
	version, results, err := portability.Chdb(testData, sqls)
	if errors.Is(err, portability.ErrNoChdb) {
		if itest.InCI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for i, q := range qs {
		check(t, "chdb "+version, q, results[i])
	}
}

// want is each query's TSV on testData, worked out by hand (see the
// comments) and identical on both engines.
var want = map[int]string{
	// 50 reflectors x 30 flows x 500 kB; 100.64.1.1: 40 x 500 kB.
	1: "::ffff:100.64.1.1\t20000000\t40000\t40\n" +
		"::ffff:100.64.0.0\t15000000\t30000\t30\n" +
		"::ffff:100.64.0.1\t15000000\t30000\t30\n",
	// udp: 1500+40 attack flows (770 MB) + 350 DNS flows (110x1000+120x2000+120x3000 B);
	// tcp: 700 flows (220x1000+240x2000+240x3000 B).
	2: "udp\t770710000\t1547100\t1890\n" +
		"tcp\t1420000\t14200\t700\n",
	// 12h: 6 flows x 3000 B per minute = 2400 bps; 11h: p95 of 55 quiet minutes
	// (1600 bps) and 5 attack minutes is the 58th of 60 sorted = 20001600;
	// 10h: 55 minutes (gap 10:45-10:49); Oct 31: 10 MB in one minute.
	3: "2026-11-20 12:00:00\t2400\t60\n" +
		"2026-11-20 11:00:00\t20001600\t60\n" +
		"2026-11-20 10:00:00\t800\t55\n" +
		"2026-10-31 12:00:00\t1333333\t1\n",
	// 25 flows/s x 500 kB + 2 kB baseline at second 0 => 2502000 B x 8;
	// 11:32:17 adds 40 x 500 kB.
	4: "2026-11-20 11:30:00\t20001600\t20016000\t0\n" +
		"2026-11-20 11:31:00\t20001600\t20016000\t0\n" +
		"2026-11-20 11:32:00\t22668266\t180000000\t17\n" +
		"2026-11-20 11:33:00\t20001600\t20016000\t0\n" +
		"2026-11-20 11:34:00\t20001600\t20016000\t0\n",
	// inc-a1 had a critical update; inc-g1 and inc-g2 are globex's.
	5: "acme\t2026-10-01\t1\t0\n" +
		"acme\t2026-11-01\t1\t1\n" +
		"globex\t2026-11-01\t2\t0\n",
	// inc-a1 is 11:30-11:35: every attack flow (51 sources); then the
	// 2 kB baseline flows, ties broken by proto and src_port (40000+n, n=541..).
	6: "17\t123\t770000000\t1540\t51\n" +
		"6\t40541\t2000\t1\t1\n" +
		"6\t40542\t2000\t1\t1\n",
	// acme: Oct 31 x 10 MB; Nov 772.13 MB (+149.1%). globex: 744 h x 1 MB,
	// 720 h x 1.5 MB (+45.2%). No September: prev 0.
	7: "acme\t2026-10-01\t310000000\t0\t0\n" +
		"acme\t2026-11-01\t772130000\t310000000\t149.1\n" +
		"globex\t2026-10-01\t744000000\t0\t0\n" +
		"globex\t2026-11-01\t1080000000\t744000000\t45.2\n",
	// only inc-g1 has no end event.
	8: "inc-g1\tglobex\t198.51.100.0/24\tsyn_flood\twarning\t2026-11-25 08:00:00\tstart\t0\n",
	// 10:00-10:59: 220 TCP/443 and 110 UDP/53 flows of 10 packets.
	9: "443\ttcp\t2200\t220\n" +
		"53\tudp\t1100\t110\n",
	// globex: 24 h x 1.5 MB outbound.
	10: "2026-11-20\tacme\t0.772\t0\n" +
		"2026-11-20\tglobex\t0\t0.036\n",
	// expected at 12:00; p95 100 Mbps / 120 kbps = 833.33.
	11: "acme\t203.0.113.0/24\tinbound\tbps\t120000\t100000000\t833.33\n" +
		"acme\t203.0.113.0/24\tinbound\tpps\t50\t45000\t900\n" +
		"globex\t198.51.100.0/24\toutbound\tbps\t3000\t3400\t1.13\n",
	// 192.0.2.1: 1050 baseline + 1500 attack flows; .2: globex's 24 hours;
	// .3: the 40 sFlow samples.
	12: "::ffff:192.0.2.1\t[100]\t2550\t752130000\n" +
		"::ffff:192.0.2.2\t[1000]\t24\t36000000\n" +
		"::ffff:192.0.2.3\t[1]\t40\t20000000\n",
	// no data 10:45-10:49: 10:44 to 10:50 is 360 s.
	13: "2026-11-20 10:50:00\t360\n",
}
