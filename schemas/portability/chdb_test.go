package portability

import (
	"errors"
	"testing"

	"github.com/packetworks/flowsentry/schemas/itest"
)

// TestMigrationsOnCurrentClickHouse applies every migration on a current
// ClickHouse (chdb), inserts rows into each table and reads them back.
func TestMigrationsOnCurrentClickHouse(t *testing.T) {
	cs := cases("chdbtest")
	var queries []string
	for _, c := range cs {
		queries = append(queries, c.query)
	}
	version, results, err := Chdb(rows("chdbtest"), queries)
	if errors.Is(err, ErrNoChdb) {
		if itest.InCI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("current ClickHouse engine: chdb %s", version)
	for i, c := range cs {
		if results[i] != c.want {
			t.Errorf("%s on %s:\n got %q\nwant %q", c.name, version, results[i], c.want)
		}
	}
}
