//go:build integration

package securitytest

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/schemas/itest"
)

// secrets are random per run, so that finding one in a log can only mean a leak.
type secrets struct {
	kafkaAdmin, kafkaSvc, kafkaCollector, kafkaDetector, kafkaAlerter, kafkaSink string
	chWriter                                                                     string
	pagerDutyKey, slackPath, apiToken                                            string
}

func newSecrets() secrets {
	r := func(p string) string { return p + itest.RandomID() + itest.RandomID() }
	return secrets{kafkaAdmin: r("kadm"), kafkaSvc: r("ksvc"), kafkaCollector: r("kcol"), kafkaDetector: r("kdet"),
		kafkaAlerter: r("kalr"), kafkaSink: r("ksnk"), chWriter: r("chw"), pagerDutyKey: r("pdkey"), slackPath: r("slackpath"),
		apiToken: r("apitoken")}
}

func (s secrets) all() map[string]string {
	return map[string]string{"kafka admin password": s.kafkaAdmin, "kafka svc password": s.kafkaSvc,
		"kafka collector password": s.kafkaCollector, "kafka detector password": s.kafkaDetector,
		"kafka alerter password": s.kafkaAlerter, "kafka sink password": s.kafkaSink, "clickhouse writer password": s.chWriter,
		"pagerduty routing key": s.pagerDutyKey, "slack webhook path": s.slackPath, "api token": s.apiToken}
}

// servers are the secured Kafka broker and ClickHouse server of one test run.
type servers struct {
	root     string // repository root
	dir      string // certificates, data, logs
	ca       string // the CA that signed the servers' certificate
	wrongCA  string // a CA that did not
	kafka    string // SASL_SSL host:port
	ch       string // native TLS host:port
	secrets  secrets
	startDur time.Duration
}

// repoRoot is two levels up from this package (schemas/securitytest).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// unavailable skips outside CI and fails in CI (itest's rule for services).
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	if itest.InCI() {
		t.Fatalf("security test prerequisites missing in CI: "+format, args...)
	}
	t.Skipf("security test skipped: "+format, args...)
}

// startServers generates certificates, picks free ports and runs
// `secure-services.sh up` in a temporary directory. The servers are stopped
// (script `down`, then SIGKILL of anything left) when the test ends.
func startServers(t *testing.T) *servers {
	t.Helper()
	root := repoRoot(t)
	script := filepath.Join(root, "deploy", "scripts", "secure-services.sh")
	for _, bin := range []string{"java", "clickhouse-server", "bash"} {
		if _, err := exec.LookPath(bin); err != nil {
			unavailable(t, "%s is not installed", bin)
		}
	}
	if _, err := os.Stat(filepath.Join(root, ".run", "kafka", "lib", ".pom.sha256")); err != nil {
		unavailable(t, "no Kafka jars in .run/kafka/lib (deploy/scripts/services-up.sh fetches them): %v", err)
	}
	s := &servers{root: root, dir: t.TempDir(), secrets: newSecrets()}
	tlsDir := filepath.Join(s.dir, "tls")
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca, caKey := writeCA(t, tlsDir, "ca")
	writeServerCert(t, tlsDir, ca, caKey)
	writeCA(t, tlsDir, "wrong-ca")
	s.ca, s.wrongCA = filepath.Join(tlsDir, "ca.pem"), filepath.Join(tlsDir, "wrong-ca.pem")

	kport, cport, chport := freePort(t), freePort(t), freePort(t)
	s.kafka, s.ch = "127.0.0.1:"+kport, "127.0.0.1:"+chport
	sec := s.secrets
	env := append(os.Environ(),
		"SECURE_KAFKA_PORT="+kport, "SECURE_KAFKA_CONTROLLER_PORT="+cport, "SECURE_CH_PORT="+chport,
		"FLOWSENTRY_KAFKA_ADMIN_PASSWORD="+sec.kafkaAdmin,
		"SECURE_KAFKA_SCRAM_USERS=svc:"+sec.kafkaSvc+",collector:"+sec.kafkaCollector+
			",detector:"+sec.kafkaDetector+",alerter:"+sec.kafkaAlerter+",sink:"+sec.kafkaSink,
		"SECURE_KAFKA_PLAIN_USERS=svc:"+sec.kafkaSvc,
		// svc is the tests' tool user (topics, probes); the services get ACLs.
		"SECURE_KAFKA_SUPER_USERS=svc",
		"FLOWSENTRY_CH_WRITER_PASSWORD="+sec.chWriter)

	// Registered before the start so that a failed start is cleaned up too.
	t.Cleanup(func() { s.stop(t, script, env) })
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, "up", s.dir)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	s.startDur = time.Since(start)
	if err != nil {
		t.Fatalf("secure-services.sh up: %v\n%s", err, out)
	}
	t.Logf("secure servers up in %v:\n%s", s.startDur.Round(time.Millisecond), bytes.TrimSpace(out))
	return s
}

func (s *servers) stop(t *testing.T, script string, env []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script, "down", s.dir)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("secure-services.sh down: %v\n%s", err, out)
	}
	// Whatever the script missed (it found no pid file, or timed out): the pid
	// files name our processes only, so SIGKILL is safe.
	for _, pf := range []string{"kafka/kafka.pid", "clickhouse/clickhouse.pid"} {
		b, err := os.ReadFile(filepath.Join(s.dir, pf))
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
			if cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); bytes.Contains(cmdline, []byte(s.dir)) {
				t.Errorf("%s: pid %d survived secure-services.sh down; killing it", pf, pid)
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// logs returns every log file the servers wrote (for the secret scan).
func (s *servers) logs(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, pattern := range []string{"kafka/*.log", "clickhouse/log/*.log"} {
		files, _ := filepath.Glob(filepath.Join(s.dir, pattern))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[strings.TrimPrefix(f, s.dir+"/")] = b
		}
	}
	return out
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}
