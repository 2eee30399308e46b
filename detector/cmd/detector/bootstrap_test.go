package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad invocations exit 2 with a message naming the problem, before any
// connection is attempted.
func TestBootstrapFlags(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("engine: {window_seconds: 0}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--days", "7"}, "--from-clickhouse is required"},
		{[]string{"--from-clickhouse"}, "--days 0 is not in 1..366"},
		{[]string{"--from-clickhouse", "--days", "400"}, "--days 400"},
		{[]string{"--from-clickhouse", "--days", "1", "--rows-per-query", "10"}, "--rows-per-query 10"},
		{[]string{"--from-clickhouse", "--days", "1", "extra"}, "unexpected arguments"},
		{[]string{"--from-clickhouse", "--days", "1", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"--from-clickhouse", "--days", "1", "-config", bad}, "engine.window_seconds"},
	}
	for _, tc := range cases {
		var out, errb bytes.Buffer
		if code := bootstrapCommand(tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}
