package deploytest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// services are the long-running commands; schemaCmd the one-shot one.
var services = []string{"collector", "detector", "sink", "alerter"}

const schemaCmd = "flowsentry-schema"

var (
	root       string
	catOnce    sync.Once
	cat        Catalogue
	catErr     error
	binOnce    sync.Once
	binDir     string
	binErr     error
	binTempDir string
)

func TestMain(m *testing.M) {
	var err error
	if root, err = RepoRoot("."); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if binTempDir != "" {
		_ = os.RemoveAll(binTempDir)
	}
	os.Exit(code)
}

func path(parts ...string) string { return filepath.Join(append([]string{root}, parts...)...) }

func readFile(t *testing.T, parts ...string) string {
	t.Helper()
	b, err := os.ReadFile(path(parts...))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// catalogue is every metric name registered by the services' Go source.
func catalogue(t *testing.T) Catalogue {
	t.Helper()
	catOnce.Do(func() {
		cat, catErr = ScanMetrics(path("collector"), path("detector"), path("alerter"), path("schemas"))
	})
	if catErr != nil {
		t.Fatal(catErr)
	}
	return cat
}

// checkMetrics fails for every series name in expr the Go source does not register.
func checkMetrics(t *testing.T, where, expr string) []string {
	t.Helper()
	names, err := MetricNames(expr)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return nil
	}
	c := catalogue(t)
	for _, n := range names {
		if n == "up" { // written by Prometheus for every target
			continue
		}
		if !c.Has(n) {
			t.Errorf("%s: metric %q is not registered anywhere in the Go source", where, n)
		}
	}
	if len(names) == 0 {
		t.Errorf("%s: expression names no metric: %q", where, expr)
	}
	return names
}

// makeBuildNames are the binaries `make build` writes to bin/: one per
// <module>/cmd/<name> directory of the modules in go.work.
func makeBuildNames(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, m := range workModules(t) {
		dirs, _ := filepath.Glob(path(m, "cmd", "*"))
		for _, d := range dirs {
			if st, err := os.Stat(d); err == nil && st.IsDir() {
				out[filepath.Base(d)] = true
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no <module>/cmd/* directories found")
	}
	return out
}

// workModules are the directories named by go.work's use directives.
func workModules(t *testing.T) []string {
	t.Helper()
	var mods []string
	inUse := false
	for _, line := range strings.Split(readFile(t, "go.work"), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "use ("):
			inUse = true
		case inUse && line == ")":
			inUse = false
		case inUse && line != "":
			mods = append(mods, strings.TrimPrefix(line, "./"))
		case strings.HasPrefix(line, "use "):
			mods = append(mods, strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(line, "use ")), "./"))
		}
	}
	sort.Strings(mods)
	return mods
}

// binaries builds the services once per test run (the Go build cache makes
// it ~15 s) so configs can be checked by the real code.
func binaries(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: not building the services")
	}
	binOnce.Do(func() {
		binTempDir, binErr = os.MkdirTemp("", "deploytest-bin-")
		if binErr != nil {
			return
		}
		dir := binTempDir + string(os.PathSeparator)
		// No DWARF: linking dominates the build time here.
		cmd := exec.Command(goTool(), "build", "-ldflags=-s -w", "-o", dir, "./collector/cmd/collector", "./detector/cmd/detector",
			"./alerter/cmd/alerter", "./alerter/cmd/sink", "./schemas/cmd/flowsentry-schema")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		binDir = binTempDir
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

func goTool() string {
	if p := filepath.Join(os.Getenv("GOROOT"), "bin", "go"); os.Getenv("GOROOT") != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// tool finds an external checker. Missing: skip, except in CI when the
// project installs it (promtool: Debian package prometheus).
func tool(t *testing.T, name string, requiredInCI bool) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if requiredInCI && os.Getenv("CI") != "" {
		t.Fatalf("%s not installed (CI must install it)", name)
	}
	t.Skipf("%s not installed", name)
	return ""
}

// serviceConfig is one service's YAML config as a generic tree.
type serviceConfig map[string]any

func loadConfig(t *testing.T, parts ...string) serviceConfig {
	t.Helper()
	// Decode into a plain map: yaml.v3 would give nested maps the named type.
	var c map[string]any
	if err := yaml.Unmarshal([]byte(readFile(t, parts...)), &c); err != nil {
		t.Fatalf("%s: %v", filepath.Join(parts...), err)
	}
	return serviceConfig(c)
}

// httpPort is the port of the service's /metrics listener.
func (c serviceConfig) httpPort(t *testing.T, service string) string {
	t.Helper()
	key := "http_addr"
	if service == "alerter" {
		key = "listen"
	}
	addr, _ := c[key].(string)
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		t.Fatalf("%s config: %s %q: want host:port", service, key, addr)
	}
	return port
}

// envRefs are the environment variables the config reads secrets from:
// every {env: NAME} secret reference, and the alerter's api.tokens_env.
func (c serviceConfig) envRefs() []string {
	set := map[string]bool{}
	var walk func(v any, key string)
	walk = func(v any, key string) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(e, k)
			}
		case []any:
			for _, e := range x {
				walk(e, key)
			}
		case string:
			if (key == "env" || key == "tokens_env") && x != "" {
				set[x] = true
			}
		}
	}
	walk(map[string]any(c), "")
	var out []string
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// secretish names an environment variable that must never hold a literal in a manifest.
func secretish(name string) bool {
	n := strings.ToUpper(name)
	for _, w := range []string{"PASSWORD", "TOKEN", "WEBHOOK", "SECRET", "ROUTING_KEY"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}
