// Package portability runs SQL on both ClickHouse engines that Flowsentry
// supports, so tests can prove the schema and the analysts' queries behave
// the same: Debian's 18.16 server (HTTP interface) and a current release
// (PyPI's chdb, in-process, through chdb_run.py).
package portability

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// ErrNoChdb means Python's chdb package is not installed.
var ErrNoChdb = errors.New("chdb is not installed (pip install chdb)")

// Dir is this package's folder (chdb_run.py) and MigrationsDir the SQL files.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// MigrationsDir is schemas/migrations.
func MigrationsDir() string { return filepath.Join(Dir(), "..", "migrations") }

// Chdb applies the migrations on a fresh in-process current ClickHouse, runs
// statements, then returns each query's TSV output and the engine version.
func Chdb(statements, queries []string) (version string, results []string, err error) {
	req, _ := json.Marshal(map[string]any{"migrations_dir": MigrationsDir(),
		"statements": statements, "queries": queries})
	python := os.Getenv("FLOWSENTRY_PYTHON")
	if python == "" {
		python = "python3"
	}
	cmd := exec.Command(python, filepath.Join(Dir(), "chdb_run.py"))
	cmd.Stdin = bytes.NewReader(req)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 3 {
			return "", nil, ErrNoChdb
		}
		return "", nil, fmt.Errorf("chdb: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var resp struct {
		Version string   `json:"version"`
		Results []string `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil {
		return "", nil, fmt.Errorf("chdb output: %w", err)
	}
	return resp.Version, resp.Results, nil
}

// HTTP runs one statement on a ClickHouse server's HTTP interface (default
// user) and returns its TSV output.
func HTTP(base, sql string) (string, error) {
	u := base + "/?" + url.Values{"default_format": {"TSV"}}.Encode()
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Post(u, "text/plain", strings.NewReader(sql))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("clickhouse %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return string(b), nil
}
