// Package faulttest gives the fault-tolerance tests (build tag "faults",
// `make test-faults`) what they need beyond itest: stopping the shared
// Kafka broker and bringing it back with deploy/scripts/services-up.sh,
// building and running the service binaries, and reading their /metrics
// pages and resident memory.
//
// Stopping the broker holds the services lock (.run/.services.lock, the
// one services-up.sh and services-down.sh take) for the whole outage, so
// that another engineer's `make services-up` waits instead of restarting
// the broker half-way through the fault.
package faulttest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/schemas/telemetry"
)

// RepoRoot is the directory holding go.work, found from the working
// directory upwards (go test runs in the package's directory).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("faulttest: no go.work above the working directory")
		}
		dir = parent
	}
}

// Seconds returns the environment variable key as a number of seconds, or
// def when it is unset. A value that is not a positive integer is an error
// (a typo must not silently shorten a fault).
func Seconds(key string, def int) (time.Duration, error) {
	v := os.Getenv(key)
	if v == "" {
		return time.Duration(def) * time.Second, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive number of seconds", key, v)
	}
	return time.Duration(n) * time.Second, nil
}

// Number returns the environment variable key as a positive number, or def.
func Number(key string, def float64) (float64, error) {
	v := os.Getenv(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive number", key, v)
	}
	return n, nil
}

// ---------------------------------------------------------------- Kafka outage

// Outage is the shared broker, stopped by StopKafka.
type Outage struct {
	root      string
	lock      *os.File
	StoppedAt time.Time // when the broker stopped answering
	Took      time.Duration
	restarted bool
}

const kafkaAddr = "127.0.0.1:9092"

// StopKafka takes the services lock, stops the broker that services-up.sh
// started (SIGTERM, as services-down.sh does; SIGKILL after 60 s) and
// returns once its port refuses connections. A test cleanup restarts it if
// the test ends before Restart, so the services are always left up.
func StopKafka(t testing.TB) *Outage {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	o := &Outage{root: root}
	t.Cleanup(func() {
		if !o.restarted {
			t.Logf("restarting the broker the test left stopped")
			o.Restart(t)
		}
	})
	o.lock, err = lockServices(filepath.Join(root, ".run", ".services.lock"))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	pidFile := filepath.Join(root, ".run", "kafka", "kafka.pid")
	pid, err := brokerPID(pidFile, filepath.Join(root, ".run", "kafka", "server.properties"))
	if err != nil {
		o.unlock()
		o.restarted = true
		t.Fatalf("the shared broker is not running (bash deploy/scripts/services-up.sh): %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to broker pid %d: %v", pid, err)
	}
	if !waitGone(pid, 60*time.Second) {
		t.Logf("broker pid %d still running 60 s after SIGTERM: SIGKILL", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		if !waitGone(pid, 10*time.Second) {
			t.Fatalf("broker pid %d survived SIGKILL", pid)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); portOpen(kafkaAddr); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections after the broker stopped", kafkaAddr)
		}
	}
	o.StoppedAt, o.Took = time.Now(), time.Since(t0)
	t.Logf("kafka broker pid %d stopped in %v", pid, o.Took.Round(time.Millisecond))
	return o
}

// Restart releases the services lock and runs services-up.sh (which
// restarts whatever is down; the topics exist, so its schema step is
// skipped). It returns how long the broker took to answer again.
func (o *Outage) Restart(t testing.TB) time.Duration {
	t.Helper()
	if o.restarted {
		return 0
	}
	o.restarted = true
	o.unlock()
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "deploy/scripts/services-up.sh")
	cmd.Dir = o.root
	cmd.Env = append(os.Environ(), "FLOWSENTRY_SKIP_SCHEMA=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("services-up.sh: %v\n%s", err, out)
	}
	d := time.Since(t0)
	t.Logf("services-up.sh took %v:\n%s", d.Round(time.Millisecond), strings.TrimSpace(string(out)))
	return d
}

func (o *Outage) unlock() {
	if o.lock != nil {
		o.lock.Close() // closing the descriptor releases the flock
		o.lock = nil
	}
}

// lockServices takes the flock that services-up.sh and services-down.sh
// take, waiting up to 15 minutes like they do.
func lockServices(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(15 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("services lock %s: %w", path, err)
		}
	}
}

// brokerPID reads the pid file and checks that the process is our broker
// (its command line names this checkout's server.properties), so that a
// recycled pid is never signalled.
func brokerPID(pidFile, props string) (int, error) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", pidFile, err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0, fmt.Errorf("pid %d from %s: %w", pid, pidFile, err)
	}
	if c := strings.ReplaceAll(string(cmdline), "\x00", " "); !strings.Contains(c, "kafka.Kafka "+props) {
		return 0, fmt.Errorf("pid %d from %s is not the broker: %.120s", pid, pidFile, c)
	}
	return pid, nil
}

// alive: the process exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "State:"); ok {
			return !strings.HasPrefix(strings.TrimSpace(v), "Z")
		}
	}
	return true
}

func waitGone(pid int, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if !alive(pid) {
			return true
		}
	}
	return !alive(pid)
}

func portOpen(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// ---------------------------------------------------------------- binaries

var (
	buildMu  sync.Mutex
	buildDir = map[string]string{}
)

// Main runs the tests of a package that uses Build and removes the
// binaries afterwards: func TestMain(m *testing.M) { os.Exit(faulttest.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	buildMu.Lock()
	defer buildMu.Unlock()
	for pkg, p := range buildDir {
		os.RemoveAll(filepath.Dir(p))
		delete(buildDir, pkg)
	}
	return code
}

// Build compiles the main package pkg (relative to the repo root, e.g.
// "./collector/cmd/collector") once per test binary and returns the
// executable's path. FLOWSENTRY_BIN names a directory of binaries built
// already (e.g. bin/ after `make build`).
func Build(t testing.TB, pkg string) string {
	t.Helper()
	name := filepath.Base(pkg)
	if dir := os.Getenv("FLOWSENTRY_BIN"); dir != "" {
		return filepath.Join(dir, name)
	}
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := buildDir[pkg]; ok {
		return p
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Not t.TempDir: the binary outlives the first test that asked for it.
	dir, err := os.MkdirTemp("", "faulttest-bin-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	buildDir[pkg] = out
	return out
}

// Proc is a service binary under test; stdout and stderr go to Log.
type Proc struct {
	Name string
	Log  string
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start runs bin with args; a test cleanup kills it if it still runs.
func Start(t testing.TB, name, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Log: filepath.Join(t.TempDir(), name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.Log)
	if err != nil {
		t.Fatal(err)
	}
	p.Cmd = exec.Command(bin, args...)
	p.Cmd.Stdout, p.Cmd.Stderr = f, f
	if err := p.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.Cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.Cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s output (last 3000 bytes):\n%s", name, p.Tail(3000))
		}
	})
	return p
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Exited reports whether the process ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Kill sends SIGKILL (a crash: no shutdown code runs) and waits.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// Stop sends SIGTERM and waits up to d; it reports the exit error.
func (p *Proc) Stop(d time.Duration) error {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		p.Kill()
		return fmt.Errorf("%s did not stop within %v of SIGTERM", p.Name, d)
	}
}

// Tail is the end of the process's output.
func (p *Proc) Tail(n int64) string {
	f, err := os.Open(p.Log)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// RSS is the resident memory of process pid in bytes (VmRSS).
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				n, err := strconv.ParseInt(f[0], 10, 64)
				return n << 10, err
			}
		}
	}
	return 0, fmt.Errorf("pid %d: no VmRSS in /proc/%d/status", pid, pid)
}

// FreeTCPAddr is a loopback TCP address nobody listens on right now (for
// a service's http_addr).
func FreeTCPAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// ---------------------------------------------------------------- metrics

// Metrics is one scrape of a /metrics page (telemetry.Metrics).
type Metrics = telemetry.Metrics

// Scrape reads http://addr/metrics.
func Scrape(addr string) (Metrics, error) {
	return telemetry.Scrape(context.Background(), "http://"+addr)
}
