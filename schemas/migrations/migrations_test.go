package migrations

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"one", "CREATE TABLE a (x UInt8) ENGINE = Memory;\n", []string{"CREATE TABLE a (x UInt8) ENGINE = Memory"}},
		{"comments and two", "-- c1\nCREATE TABLE a\n(\n  x UInt8 -- inline stays\n);\n-- c2\nDROP TABLE b;\n",
			[]string{"CREATE TABLE a\n(\n  x UInt8 -- inline stays\n)", "DROP TABLE b"}},
		{"no trailing semicolon", "SELECT 1", []string{"SELECT 1"}},
		{"empty", "-- only a comment\n\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Split(tc.in)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Fatalf("Split = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEmbeddedMigrationsAreOrderedAndIdempotent(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 3 {
		t.Fatalf("want at least 3 migrations, got %d", len(all))
	}
	for i, m := range all {
		// Gaps are allowed (teams reserve ranges); order and uniqueness are not optional.
		if i > 0 && m.Version <= all[i-1].Version {
			t.Errorf("migration %04d_%s is not after %04d", m.Version, m.Name, all[i-1].Version)
		}
		for _, s := range m.Statements {
			up := strings.ToUpper(s)
			if strings.HasPrefix(up, "CREATE") && !strings.Contains(up, "IF NOT EXISTS") {
				t.Errorf("%04d_%s: CREATE without IF NOT EXISTS is not idempotent: %.60s", m.Version, m.Name, s)
			}
			if !strings.Contains(s, Database+".") {
				t.Errorf("%04d_%s: statement does not name database %s: %.60s", m.Version, m.Name, Database, s)
			}
			// Types that Debian's ClickHouse 18.16 lacks (docs/clickhouse.md).
			for _, banned := range []string{"IPv4", "IPv6", "DateTime64", " TTL ", "LowCardinality", "Nullable(IP"} {
				if strings.Contains(s, banned) && !strings.Contains(s, "IPv6NumToString") {
					t.Errorf("%04d_%s: uses %q, not portable to 18.16", m.Version, m.Name, banned)
				}
			}
		}
	}
}

func TestLoadRejectsBadNamesAndDuplicates(t *testing.T) {
	_, err := load(fstest.MapFS{"1_x.sql": {Data: []byte("SELECT 1;")}})
	if err == nil || !strings.Contains(err.Error(), "NNNN_name.sql") {
		t.Fatalf("bad name: err = %v", err)
	}
	_, err = load(fstest.MapFS{
		"0001_a.sql": {Data: []byte("SELECT 1;")},
		"0001_b.sql": {Data: []byte("SELECT 2;")},
	})
	if err == nil || !strings.Contains(err.Error(), "share version 1") {
		t.Fatalf("duplicate: err = %v", err)
	}
}
