//go:build integration

package securitytest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/migrations"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/packetworks/flowsentry/schemas/topics"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
)

// buildBinaries starts `go build` of the four services and flowsentry-schema in the background
// (FLOWSENTRY_BIN: a directory with them already built, e.g. bin/ after
// `make build`) and returns a function that waits for it.
func buildBinaries(t *testing.T, root string) func(t *testing.T) string {
	if dir := os.Getenv("FLOWSENTRY_BIN"); dir != "" {
		return func(*testing.T) string { return dir }
	}
	dir := t.TempDir()
	var out []byte
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		cmd := exec.Command("go", "build", "-o", dir+"/", "./collector/cmd/collector", "./detector/cmd/detector",
			"./alerter/cmd/alerter", "./alerter/cmd/sink", "./schemas/cmd/flowsentry-schema")
		cmd.Dir = root
		out, err = cmd.CombinedOutput()
	}()
	t.Cleanup(func() { <-done })
	return func(t *testing.T) string {
		t.Helper()
		<-done
		if err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		return dir
	}
}

// proc is one service binary under test; its stdout+stderr go to a file.
type proc struct {
	name, log string
	cmd       *exec.Cmd
	done      chan struct{}
	err       error
}

func startProc(t *testing.T, dir, name, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
	return p
}

// stop sends SIGTERM and waits (a clean shutdown writes the state files).
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Errorf("%s did not stop within 20 s of SIGTERM", p.name)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) output(t *testing.T) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metric sums every sample of a Prometheus metric in a /metrics page.
func metric(page, name string) float64 {
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(page))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "{")) {
			if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
				sum += v
			}
		}
	}
	return sum
}

func get(url, bearer string) (int, string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// netflowV5 is one NetFlow v5 datagram with n flows towards 10.1.2.3
// (the inventory's protected network), timestamped now.
func netflowV5(seq uint32, n int) []byte {
	now := time.Now()
	const uptime = 100000
	b := make([]byte, 24+48*n)
	binary.BigEndian.PutUint16(b[0:], 5)
	binary.BigEndian.PutUint16(b[2:], uint16(n))
	binary.BigEndian.PutUint32(b[4:], uptime)
	binary.BigEndian.PutUint32(b[8:], uint32(now.Unix()))
	binary.BigEndian.PutUint32(b[12:], uint32(now.Nanosecond()))
	binary.BigEndian.PutUint32(b[16:], seq)
	for i := 0; i < n; i++ {
		r := b[24+48*i:]
		copy(r[0:4], net.IPv4(198, 51, 100, byte(i+1)).To4())
		copy(r[4:8], net.IPv4(10, 1, 2, 3).To4())
		binary.BigEndian.PutUint32(r[16:], 10)         // packets
		binary.BigEndian.PutUint32(r[20:], 15000)      // bytes
		binary.BigEndian.PutUint32(r[24:], uptime-900) // first
		binary.BigEndian.PutUint32(r[28:], uptime-100) // last
		binary.BigEndian.PutUint16(r[32:], uint16(40000+i))
		binary.BigEndian.PutUint16(r[34:], 443)
		r[38] = 6 // TCP
	}
	return b
}

// fakeReceivers stand in for Slack and PagerDuty. The first Slack request
// is answered by closing the connection: the transport error's text then
// holds the webhook URL, which the alerter must not log.
type fakeReceivers struct {
	srv                   *httptest.Server
	slackOK, pd, slackAll atomic.Int32
	mu                    sync.Mutex
	pdBodies              []string
}

func newFakeReceivers(t *testing.T, slackPath string) *fakeReceivers {
	f := &fakeReceivers{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.URL.Path == "/services/"+slackPath:
			if f.slackAll.Add(1) == 1 {
				if hj, ok := w.(http.Hijacker); ok {
					c, _, _ := hj.Hijack()
					c.Close()
					return
				}
			}
			f.slackOK.Add(1)
			_, _ = w.Write([]byte("ok"))
		case r.URL.Path == "/v2/enqueue":
			f.mu.Lock()
			f.pdBodies = append(f.pdBodies, string(body))
			f.mu.Unlock()
			f.pd.Add(1)
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"status":"success","message":"Event processed","dedup_key":"x"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

const inventoryYAML = `protected: ["10.1.0.0/16"]
customers:
  - id: acme
    name: Acme
    prefixes: ["10.1.0.0/16"]
`

const collectorYAML = `collector_id: sec-collector
log_level: debug
http_addr: %[1]q
listeners:
  - {protocol: netflow, addr: %[2]q, network: udp4, sockets: 1, read_buffer: 1048576}
inventory: %[3]q
templates: {state_file: %[4]q, save_interval: 1s}
kafka:
  brokers: [%[5]q]
  client_id: sec-collector
  tls: {enabled: true, ca_file: %[6]q}
  sasl: {mechanism: scram-sha-512, username: collector, password: {env: FLOWSENTRY_KAFKA_PASSWORD}}
produce: {topic: %[7]q, linger: 50ms, partitions: 8, write_timeout: 5s, drain_timeout: 3s}
`

const detectorYAML = `instance: sec-detector
log_level: debug
http_addr: %[1]q
kafka:
  brokers: [%[2]q]
  client_id: sec-detector
  tls: {enabled: true, ca_file: %[3]q}
  sasl: {mechanism: scram-sha-512, username: detector, password: {env: FLOWSENTRY_KAFKA_PASSWORD}}
worker:
  group: %[4]q
  topics: {flows: %[5]q, anomalies: %[6]q, baselines: %[7]q, state: %[8]q}
  start_offset: first
  checkpoint_seconds: 1
  session_timeout_seconds: 6
  heartbeat_seconds: 1
`

// adminYAML is the kafka section of the broker's super user, for
// flowsentry-schema (topics, ACLs).
const adminYAML = `kafka:
  brokers: [%[1]q]
  client_id: sec-admin
  tls: {enabled: true, ca_file: %[2]q}
  sasl: {mechanism: scram-sha-512, username: admin, password: {env: FLOWSENTRY_KAFKA_ADMIN_PASSWORD}}
`

const sinkYAML = `log_level: debug
http_addr: %[1]q
kafka:
  brokers: [%[2]q]
  client_id: sec-sink
  tls: {enabled: true, ca_file: %[3]q}
  sasl: {mechanism: scram-sha-512, username: sink, password: {env: FLOWSENTRY_KAFKA_PASSWORD}}
consumer: {flows_topic: %[4]q}
clickhouse:
  addr: [%[5]q]
  database: flowsentry
  username: flowsentry_writer
  password: {env: FLOWSENTRY_CH_WRITER_PASSWORD}
  dial_timeout: 3s
  tls: {enabled: true, ca_file: %[3]q}
batch: {max_wait: 200ms}
retry: {initial_backoff: 100ms, max_backoff: 1s}
`

const alerterYAML = `log_level: debug
listen: %[1]q
instance: sec-alerter
kafka:
  brokers: [%[2]q]
  client_id: sec-alerter
  tls: {enabled: true, ca_file: %[3]q}
  sasl: {mechanism: scram-sha-512, username: alerter, password: {env: FLOWSENTRY_KAFKA_PASSWORD}}
consumer: {topic: %[4]q, group_id: %[5]q, commit_interval: 200ms, start_offset: first, session_timeout: 6s}
clickhouse:
  addr: [%[6]q]
  database: flowsentry
  username: flowsentry_writer
  password: {env: FLOWSENTRY_CH_WRITER_PASSWORD}
  dial_timeout: 3s
  tls: {enabled: true, ca_file: %[3]q}
audit: {enabled: true, flush_interval: 200ms}
state: {path: %[7]q, dead_letter_path: %[8]q}
incidents: {tick: 100ms, resolve_after: 10m}
api: {tokens_env: FLOWSENTRY_ALERTER_TOKENS}
retry: {initial_backoff: 100ms, max_backoff: 300ms, max_elapsed: 20s}
route:
  receiver: slack
  group_by: [customer]
  group_wait: 0s
  group_interval: 1s
  routes:
    - matchers: ["severity=critical"]
      receiver: pd
      group_by: [customer, subnet]
      group_wait: 0s
      continue: true
    - receiver: slack
receivers:
  - name: slack
    slack: {webhook_url: {env: FLOWSENTRY_SLACK_NOC_WEBHOOK}}
  - name: pd
    pagerduty: {url: %[9]q, routing_key: {env: FLOWSENTRY_PAGERDUTY_ROUTING_KEY}}
`

// testServices runs collector -> Kafka (SASL_SSL) -> detector and sink ->
// ClickHouse (TLS), and the alerter (Kafka SASL_SSL in, ClickHouse TLS
// audit, Slack and PagerDuty out), every service as its own Kafka user
// holding only the ACLs `flowsentry-schema acls` gives it and every secret
// in the environment; checks that a service is refused a topic it has no
// ACL for; then scans their output, their /metrics pages and the servers'
// logs for every secret, and checks the modes of the state files they wrote.
func testServices(t *testing.T, s *servers, bins func(*testing.T) string) {
	sec := s.secrets
	id := itest.RandomID()
	bin := bins(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// The production topics and ACLs, made by the tool operators use, as
	// the broker's super user (this broker is the test's own: default names).
	adminCfg := write("admin.yaml", fmt.Sprintf(adminYAML, s.kafka, s.ca))
	for _, args := range [][]string{{"topics", "-kafka-config", adminCfg}, {"acls", "-apply", "-kafka-config", adminCfg}} {
		cmd := exec.Command(filepath.Join(bin, "flowsentry-schema"), args...)
		cmd.Env = append(os.Environ(), "FLOWSENTRY_KAFKA_ADMIN_PASSWORD="+sec.kafkaAdmin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("flowsentry-schema %v: %v\n%s", args, err, out)
		}
		checkNoSecrets(t, "flowsentry-schema "+args[0]+" output", out, sec)
	}
	flows, anomalies, baselines, state := topics.Flows, topics.Anomalies, topics.Baselines, topics.DetectorState
	var want []kafka.TopicConfig
	for _, tp := range topics.All() {
		want = append(want, kafka.TopicConfig{Topic: tp.Name, NumPartitions: tp.Partitions})
	}
	t.Setenv("SECTEST_KAFKA_PW", sec.kafkaSvc)
	ksec := resolve(t, kafkaConfig(s, "scram-sha-512", "svc", "SECTEST_KAFKA_PW"))
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	waitTopics(wctx, t, adminClient(s, ksec), want...)
	wcancel()
	chAdmin := migrated(t, s)
	inv := write("inventory.yaml", inventoryYAML)
	fake := newFakeReceivers(t, sec.slackPath)
	slackURL := fake.srv.URL + "/services/" + sec.slackPath

	colHTTP, detHTTP, alrHTTP, snkHTTP := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	colUDP := itest.FreeUDPAddr(t)
	colState := filepath.Join(dir, "state", "collector-state.json")
	alrState := filepath.Join(dir, "state", "alerter-state.json")
	colCfg := write("collector.yaml", fmt.Sprintf(collectorYAML, colHTTP, colUDP, inv, colState, s.kafka, s.ca, flows))
	detCfg := write("detector.yaml", fmt.Sprintf(detectorYAML, detHTTP, s.kafka, s.ca, "flowsentry-detector", flows, anomalies, baselines, state))
	alrCfg := write("alerter.yaml", fmt.Sprintf(alerterYAML, alrHTTP, s.kafka, s.ca, anomalies, "flowsentry-alerter", s.ch,
		alrState, filepath.Join(dir, "state", "deadletter.jsonl"), fake.srv.URL+"/v2/enqueue"))
	snkCfg := write("sink.yaml", fmt.Sprintf(sinkYAML, snkHTTP, s.kafka, s.ca, flows, s.ch))

	// -check first: the config (secrets resolved where the command does) is valid.
	for _, c := range []struct{ name, cfg string }{{"collector", colCfg}, {"detector", detCfg}, {"alerter", alrCfg}, {"sink", snkCfg}} {
		cmd := exec.Command(filepath.Join(bin, c.name), "-config", c.cfg, "-check")
		cmd.Env = append(os.Environ(), "FLOWSENTRY_KAFKA_PASSWORD="+sec.kafkaAlerter,
			"FLOWSENTRY_CH_WRITER_PASSWORD="+sec.chWriter, "FLOWSENTRY_SLACK_NOC_WEBHOOK="+slackURL,
			"FLOWSENTRY_PAGERDUTY_ROUTING_KEY="+sec.pagerDutyKey, "FLOWSENTRY_ALERTER_TOKENS=noc:operator:"+sec.apiToken)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s -check: %v\n%s", c.name, err, out)
		}
		checkNoSecrets(t, c.name+" -check output", out, sec)
	}

	det := startProc(t, dir, "detector", filepath.Join(bin, "detector"),
		[]string{"FLOWSENTRY_KAFKA_PASSWORD=" + sec.kafkaDetector}, "-config", detCfg)
	col := startProc(t, dir, "collector", filepath.Join(bin, "collector"),
		[]string{"FLOWSENTRY_KAFKA_PASSWORD=" + sec.kafkaCollector}, "-config", colCfg)
	alr := startProc(t, dir, "alerter", filepath.Join(bin, "alerter"),
		[]string{"FLOWSENTRY_KAFKA_PASSWORD=" + sec.kafkaAlerter, "FLOWSENTRY_CH_WRITER_PASSWORD=" + sec.chWriter,
			"FLOWSENTRY_SLACK_NOC_WEBHOOK=" + slackURL, "FLOWSENTRY_PAGERDUTY_ROUTING_KEY=" + sec.pagerDutyKey,
			"FLOWSENTRY_ALERTER_TOKENS=noc:operator:" + sec.apiToken}, "-config", alrCfg)
	snk := startProc(t, dir, "sink", filepath.Join(bin, "sink"),
		[]string{"FLOWSENTRY_KAFKA_PASSWORD=" + sec.kafkaSink, "FLOWSENTRY_CH_WRITER_PASSWORD=" + sec.chWriter}, "-config", snkCfg)
	procs := []*proc{det, col, alr, snk}
	dump := func() {
		for _, p := range procs {
			t.Logf("---- %s output:\n%s", p.name, p.output(t))
		}
	}
	wait := func(what string, d time.Duration, f func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !f() {
			for _, p := range procs {
				select {
				case <-p.done:
					dump()
					t.Fatalf("%s exited (%v) while waiting for %s", p.name, p.err, what)
				default:
				}
			}
			if time.Now().After(deadline) {
				dump()
				t.Fatalf("timed out after %v waiting for %s", d, what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Collector -> Kafka (TLS + SCRAM) -> detector.
	udp, err := net.Dial("udp", colUDP)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	var seq uint32
	var colPage, detPage string
	wait("flows produced by the collector and consumed by the detector", 45*time.Second, func() bool {
		_, _ = udp.Write(netflowV5(seq, 10))
		seq += 10
		_, colPage = get("http://"+colHTTP+"/metrics", "")
		_, detPage = get("http://"+detHTTP+"/metrics", "")
		return metric(colPage, "collector_flows_produced_total") > 0 && metric(detPage, "detector_flows_folded_total") > 0
	})
	t.Logf("collector produced %.0f flows; detector folded %.0f flows from %.0f batches",
		metric(colPage, "collector_flows_produced_total"), metric(detPage, "detector_flows_folded_total"),
		metric(detPage, "detector_batches_total"))

	// ... and the sink (its own Kafka user) -> ClickHouse over TLS.
	var snkPage string
	var stored uint64
	wait("flows written to ClickHouse by the sink", 30*time.Second, func() bool {
		_, snkPage = get("http://"+snkHTTP+"/metrics", "")
		stored = count(t, chAdmin, "SELECT count() FROM flowsentry.flows WHERE customer = 'acme' AND dst_addr = toFixedString(IPv6StringToNum('::ffff:10.1.2.3'), 16)")
		return stored > 0 && metric(snkPage, "flowsentry_sink_rows_total") > 0
	})
	t.Logf("sink wrote %d of the collector's flows to ClickHouse over TLS", stored)

	// An anomaly on the secured topic -> alerter -> Slack + PagerDuty,
	// audit rows to ClickHouse over TLS.
	w := &kafka.Writer{Addr: kafka.TCP(s.kafka), Topic: anomalies, Balancer: &kafka.Murmur2Balancer{},
		Transport: ksec.Transport("securitytest"), RequiredAcks: kafka.RequireAll, BatchTimeout: 10 * time.Millisecond}
	defer w.Close()
	ev := &pb.AnomalyEvent{Id: "sec-inc-" + id, Kind: pb.AnomalyEvent_START, Class: "syn_flood",
		Severity: pb.Severity_SEVERITY_CRITICAL, Customer: "acme", Subnet: "10.1.2.0/24",
		Direction: pb.Direction_DIRECTION_INBOUND, Metric: "pps_syn", Unit: "pps", Observed: 2e6, Expected: 1e4,
		StartedAtNs: uint64(time.Now().Add(-time.Minute).UnixNano())}
	b, _ := proto.Marshal(ev)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(ev.Id), Value: b}); err != nil {
		t.Fatalf("produce anomaly: %v", err)
	}
	wait("Slack (after one dropped connection) and PagerDuty notified", 40*time.Second, func() bool {
		return fake.slackOK.Load() >= 1 && fake.pd.Load() >= 1
	})
	fake.mu.Lock()
	if !strings.Contains(fake.pdBodies[0], sec.pagerDutyKey) {
		t.Errorf("PagerDuty event does not carry the routing key from the environment: %s", fake.pdBodies[0])
	}
	fake.mu.Unlock()
	if fake.slackAll.Load() < 2 {
		t.Errorf("Slack saw %d requests; want the dropped one and its retry", fake.slackAll.Load())
	}
	var alrPage string
	wait("audit rows written to ClickHouse over TLS", 20*time.Second, func() bool {
		_, alrPage = get("http://"+alrHTTP+"/metrics", "")
		return metric(alrPage, "flowsentry_alerter_audit_rows_written_total") > 0
	})
	wait("the anomaly stored in alerts by the sink", 20*time.Second, func() bool {
		return count(t, chAdmin, "SELECT count() FROM flowsentry.alerts WHERE incident_id = '"+ev.Id+"'") > 0
	})

	// API: bearer tokens; the request log names the caller, never the token.
	if code, body := get("http://"+alrHTTP+"/api/v1/whoami", sec.apiToken); code != 200 || !strings.Contains(body, "noc") {
		t.Errorf("whoami with the token: %d %s", code, body)
	}
	if code, _ := get("http://"+alrHTTP+"/api/v1/whoami", "not-the-token-0123456789abcdef"); code != http.StatusUnauthorized {
		t.Errorf("whoami with a wrong token: %d, want 401", code)
	}
	if code, _ := get("http://"+alrHTTP+"/api/v1/whoami", ""); code != http.StatusUnauthorized {
		t.Errorf("whoami without a token: %d, want 401", code)
	}
	_, colPage = get("http://"+colHTTP+"/metrics", "")
	_, detPage = get("http://"+detHTTP+"/metrics", "")
	_, alrPage = get("http://"+alrHTTP+"/metrics", "")
	_, snkPage = get("http://"+snkHTTP+"/metrics", "")

	// ACLs: a service is refused what its user has no ACL for, says so, and
	// counts it; the allowed paths above kept working.
	denied := testDenied(t, s, dir, bin, inv, write)

	// A collector with a wrong Kafka password: refused, says so, and does
	// not print the password it tried.
	const wrongPW = "wrong-collector-pw-5f4dcc3b5aa765d6"
	badCfg := write("collector-bad.yaml", fmt.Sprintf(collectorYAML, "127.0.0.1:"+freePort(t), itest.FreeUDPAddr(t), inv,
		filepath.Join(dir, "state", "bad-state.json"), s.kafka, s.ca, flows))
	bad := startProc(t, dir, "collector-wrong-password", filepath.Join(bin, "collector"),
		[]string{"FLOWSENTRY_KAFKA_PASSWORD=" + wrongPW}, "-config", badCfg)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(strings.ToLower(bad.output(t)), "authentication failed") {
		select {
		case <-bad.done:
			deadline = time.Now()
		default:
			time.Sleep(200 * time.Millisecond)
		}
	}
	bad.stop(t)
	badOut := bad.output(t)
	if !strings.Contains(strings.ToLower(badOut), "authentication failed") {
		t.Errorf("collector with a wrong Kafka password does not report an authentication failure:\n%s", badOut)
	}
	if strings.Contains(badOut, wrongPW) {
		t.Errorf("collector printed the (wrong) Kafka password it tried:\n%s", badOut)
	}

	// Clean shutdown: the state files are written, owner-only.
	for _, p := range procs {
		p.stop(t)
	}
	for _, f := range []string{colState, alrState} {
		st, err := os.Stat(f)
		if err != nil {
			t.Errorf("state file: %v", err)
			continue
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(f), st.Mode().Perm())
		}
	}

	// No secret anywhere: service output, /metrics pages, state files,
	// the servers' own logs.
	scan := map[string][]byte{"collector /metrics": []byte(colPage), "detector /metrics": []byte(detPage),
		"alerter /metrics": []byte(alrPage), "sink /metrics": []byte(snkPage), "collector-wrong-password output": []byte(badOut)}
	for name, b := range denied {
		scan[name] = b
	}
	for _, p := range procs {
		scan[p.name+" output"] = []byte(p.output(t))
	}
	for _, f := range []string{colState, alrState} {
		b, _ := os.ReadFile(f)
		scan[filepath.Base(f)] = b
	}
	for name, b := range s.logs(t) {
		scan["server log "+name] = b
	}
	for name, b := range scan {
		checkNoSecrets(t, name, b, sec)
	}
	t.Logf("scanned %d outputs (%d bytes) for %d secrets", len(scan), total(scan), len(sec.all()))
}

func total(m map[string][]byte) int {
	n := 0
	for _, b := range m {
		n += len(b)
	}
	return n
}

func checkNoSecrets(t *testing.T, where string, b []byte, sec secrets) {
	t.Helper()
	for what, v := range sec.all() {
		if i := bytes.Index(b, []byte(v)); i >= 0 {
			lo, hi := max(0, i-200), min(len(b), i+len(v)+50)
			t.Errorf("%s contains the %s: …%s…", where, what, b[lo:hi])
		}
	}
}

// migrated applies the migrations on the secured ClickHouse (as its admin,
// over TLS) and returns that connection for the test's own queries.
func migrated(t *testing.T, s *servers) driver.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	admin, err := chConfig(s, "default", "default", "").Open(ctx, "clickhouse")
	if err != nil {
		t.Fatalf("admin over TLS: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	if _, err := migrations.Run(ctx, admin, nil); err != nil {
		t.Fatalf("migrations over TLS: %v", err)
	}
	return admin
}

func count(t *testing.T, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// testDenied runs two services against topics their users have no ACL for:
// a collector producing to the anomalies topic (refused at every write,
// counted in collector_produce_errors_total, nothing written) and a sink
// told to read the detector's state topic (refused at start with an error
// naming the key, the topic and the ACL). It returns their output
// and /metrics for the secret scan.
func testDenied(t *testing.T, s *servers, dir, bin, inv string, write func(name, body string) string) map[string][]byte {
	sec := s.secrets
	colHTTP, colUDP := "127.0.0.1:"+freePort(t), itest.FreeUDPAddr(t)
	colCfg := write("collector-denied.yaml", fmt.Sprintf(collectorYAML, colHTTP, colUDP, inv,
		filepath.Join(dir, "state", "denied-state.json"), s.kafka, s.ca, topics.Anomalies))
	col := startProc(t, dir, "collector-denied", filepath.Join(bin, "collector"),
		[]string{"FLOWSENTRY_KAFKA_PASSWORD=" + sec.kafkaCollector}, "-config", colCfg)
	snkCfg := write("sink-denied.yaml", fmt.Sprintf(sinkYAML, "127.0.0.1:"+freePort(t), s.kafka, s.ca, topics.DetectorState, s.ch))
	snk := startProc(t, dir, "sink-denied", filepath.Join(bin, "sink"),
		[]string{"FLOWSENTRY_KAFKA_PASSWORD=" + sec.kafkaSink, "FLOWSENTRY_CH_WRITER_PASSWORD=" + sec.chWriter}, "-config", snkCfg)

	udp, err := net.Dial("udp", colUDP)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	var page string
	deadline := time.Now().Add(30 * time.Second)
	for seq := uint32(0); ; seq += 10 {
		_, _ = udp.Write(netflowV5(seq, 10))
		_, page = get("http://"+colHTTP+"/metrics", "")
		// Both the write errors and the metadata refresh's explanation
		// (its first run races the first writes).
		if metric(page, "collector_produce_errors_total") >= 3 && strings.Contains(col.output(t), "not authorized") {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("collector writing to a topic without ACL: within 30 s no produce error counted or no explanation logged; output:\n%s\nmetrics:\n%s",
				col.output(t), page)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	col.stop(t)
	colOut := col.output(t)
	if metric(page, "collector_flows_produced_total") != 0 {
		t.Errorf("collector without ACL on %s counts %.0f flows produced", topics.Anomalies, metric(page, "collector_flows_produced_total"))
	}
	// The topic holds only the one event the test wrote as svc.
	cl := adminClient(s, resolve(t, kafkaConfig(s, "scram-sha-512", "svc", "SECTEST_KAFKA_PW")))
	var req []kafka.OffsetRequest
	for p := 0; p < 4; p++ {
		req = append(req, kafka.LastOffsetOf(p))
	}
	ends, err := cl.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topics.Anomalies: req}})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range ends.Topics[topics.Anomalies] {
		total += p.LastOffset
	}
	if total != 1 {
		t.Errorf("%s holds %d messages after the refused collector; want the test's 1", topics.Anomalies, total)
	}
	// kafka-go's writer learns topics from metadata, where a topic the user
	// may not describe is absent, so its write errors say "unknown topic";
	// the collector's metadata refresh asks the broker directly and names
	// the missing ACL.
	if !strings.Contains(colOut, "not authorized") || !strings.Contains(colOut, "produce.topic") {
		t.Errorf("collector without ACL on %s does not say so (want produce.topic ... not authorized); output:\n%s", topics.Anomalies, colOut)
	}
	t.Logf("collector without ACL on %s: %.0f write errors counted, nothing written; it logs: %s | %s", topics.Anomalies,
		metric(page, "collector_produce_errors_total"), firstLine(colOut, "kafka write failed"), firstLine(colOut, "not authorized"))

	select {
	case <-snk.done:
	case <-time.After(30 * time.Second):
		t.Error("sink told to read a topic without ACL is still running after 30 s")
		snk.stop(t)
	}
	snkOut := snk.output(t)
	if snk.err == nil || !strings.Contains(snkOut, "consumer.flows_topic") || !strings.Contains(snkOut, "not authorized") ||
		!strings.Contains(snkOut, "Topic Authorization Failed") {
		t.Errorf("sink reading a topic without ACL: exit %v, want a failure naming consumer.flows_topic and the ACL:\n%s", snk.err, snkOut)
	}
	t.Logf("sink without ACL on %s: %s", topics.DetectorState, firstLine(snkOut, "sink stopped"))
	return map[string][]byte{"collector-denied output": []byte(colOut), "collector-denied /metrics": []byte(page),
		"sink-denied output": []byte(snkOut)}
}

func firstLine(out, substr string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, substr) {
			return l
		}
	}
	return "(no line with " + substr + ")"
}
