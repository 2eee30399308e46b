//go:build integration

package portability

import (
	"context"
	"os"
	"testing"

	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/migrations"
)

// TestMigrationsOnServer runs the Go migration runner against the real
// server (Debian's 18.16 here), twice to prove it idempotent, then the same
// rows and queries as the chdb test, expecting the same output.
func TestMigrationsOnServer(t *testing.T) {
	conn := itest.ClickHouse(t)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := migrations.Run(ctx, conn, nil); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
	}
	applied, err := migrations.AppliedMigrations(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := migrations.All()
	for _, m := range all {
		if a, ok := applied[m.Version]; !ok || a.Checksum != m.Checksum {
			t.Errorf("migration %04d not recorded with its checksum: %+v", m.Version, a)
		}
	}
	base := os.Getenv("FLOWSENTRY_CLICKHOUSE_HTTP")
	if base == "" {
		base = "http://127.0.0.1:8123"
	}
	version, err := HTTP(base, "SELECT version()")
	if err != nil {
		t.Fatal(err)
	}
	marker := "porttest-" + itest.RandomID()
	for _, s := range rows(marker) {
		if _, err := HTTP(base, s); err != nil {
			t.Fatalf("insert: %v", err)
		}
	}
	for _, c := range cases(marker) {
		got, err := HTTP(base, c.query)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got != c.want {
			t.Errorf("%s on %s:\n got %q\nwant %q", c.name, version, got, c.want)
		}
	}
	t.Cleanup(func() {
		for _, tbl := range []string{"flows", "alerts", "baselines"} {
			// ALTER DELETE exists on 18.16 (mutations); best effort.
			_, _ = HTTP(base, "ALTER TABLE flowsentry."+tbl+" DELETE WHERE customer = '"+marker+"'")
		}
	})
}
