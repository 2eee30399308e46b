package secret

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveAndRedact(t *testing.T) {
	t.Setenv("FS_TEST_SECRET", "hunter2-env")
	dir := t.TempDir()
	file := filepath.Join(dir, "pw")
	if err := os.WriteFile(file, []byte("hunter2-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		ref     Ref
		want    string
		wantErr string
	}{
		{"env", Ref{Env: "FS_TEST_SECRET"}, "hunter2-env", ""},
		{"file", Ref{File: file}, "hunter2-file", ""},
		{"unset env", Ref{Env: "FS_TEST_NOT_SET"}, "", "kafka.sasl.password: environment variable FS_TEST_NOT_SET is not set"},
		{"both", Ref{Env: "A", File: "B"}, "", "either env or file"},
		{"missing file", Ref{File: filepath.Join(dir, "nope")}, "", "reading secret file"},
		{"none", Ref{}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := tc.ref.Resolve("kafka.sasl.password")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.Reveal() != tc.want {
				t.Fatalf("got %q want %q", v.Reveal(), tc.want)
			}
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "pw", v, "obj", struct{ P Value }{v})
			out := buf.String() + fmt.Sprintf("%v %+v %#v %s", v, v, v, v)
			if tc.want != "" && strings.Contains(out, tc.want) {
				t.Fatalf("secret leaked: %s", out)
			}
		})
	}
}
