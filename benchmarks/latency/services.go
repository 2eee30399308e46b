package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/packetworks/flowsentry/schemas/topics"
	"github.com/segmentio/kafka-go"
)

// The services under test are the real binaries, each a process of its
// own with its own YAML, on this run's topics and consumer groups.

var serviceCmds = []string{"./collector/cmd/collector", "./detector/cmd/detector", "./alerter/cmd/alerter"}

// findRepo walks up from dir to the directory holding go.work.
func findRepo(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.work above %s: pass -repo or -bin", dir)
		}
	}
}

// build compiles the three services into dir.
func build(ctx context.Context, repo, dir string) error {
	args := append([]string{"build", "-o", dir + string(filepath.Separator)}, serviceCmds...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// --- topics ---

func topicPartitions(name string) int {
	for _, t := range topics.All() {
		if t.Name == name {
			return t.Partitions
		}
	}
	return 1
}

// waitGroupStable waits until consumer group id has a member and is
// Stable: the alerter reads from its first offset anyway, but a group still
// joining when the first START is published would add the join to that
// attack's START→notification.
func waitGroupStable(ctx context.Context, client *kafka.Client, id string) error {
	for {
		resp, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{id}})
		if err == nil && len(resp.Groups) == 1 {
			g := resp.Groups[0]
			if g.Error == nil && g.GroupState == "Stable" && len(g.Members) > 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("consumer group %s not stable: %w", id, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// --- ports ---

func freePort(network string) (int, error) {
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	default:
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	}
}

// --- processes ---

type process struct {
	name, base string // base: http://host:port of /readyz and /metrics
	cmd        *exec.Cmd
	logPath    string
	exited     chan struct{}
	err        error
}

// startProcess runs bin -config cfg with output to dir/name.log. The child
// gets SIGTERM if this program dies first (run.sh's time limit kills the
// process group anyway; this covers a kill of this process alone).
func startProcess(name, bin, cfg, dir, base string, env []string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-config", cfg)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, base: base, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	return p, nil
}

// waitReady polls /readyz until it answers 200, the process exits or ctx ends.
func (p *process) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited (%v): %s", p.name, p.err, p.logTail())
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w (log %s)", p.name, ctx.Err(), p.logPath)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits, then kills.
func (p *process) stop(wait time.Duration) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(wait):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func (p *process) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// --- configs ---

// layout is where everything of one run lives.
type layout struct {
	dir, prefix, runID                       string
	brokers                                  []string
	collectorHTTP, detectorHTTP, alerterHTTP string
	netflow, sflow, ipfix                    string
	receiverURL                              string
}

func yamlList(xs []string) string { return `["` + strings.Join(xs, `", "`) + `"]` }

// collectorYAML: production defaults except the run's ports and topic and
// one Kafka sender (keeps the time-compressed history in order, as the
// demo does; linger stays 200 ms).
func (l layout) collectorYAML() string {
	return fmt.Sprintf(`collector_id: latency-%[1]s
log_level: info
http_addr: "%[2]s"
listeners:
  - {protocol: netflow, addr: "%[3]s", network: udp4, sockets: 1, read_buffer: 16777216}
  - {protocol: sflow,   addr: "%[4]s", network: udp4, sockets: 1, read_buffer: 16777216}
  - {protocol: ipfix,   addr: "%[5]s", network: udp4, sockets: 1, read_buffer: 16777216}
inventory: %[6]s
templates:
  state_file: ""
kafka:
  brokers: %[7]s
  client_id: flowsentry-collector-latency
produce:
  topic: %[8]sflows
  senders: 1
`, l.runID, l.collectorHTTP, l.netflow, l.sflow, l.ipfix, filepath.Join(l.dir, "inventory.yaml"), yamlList(l.brokers), l.prefix)
}

// detectorYAML: production windows, lateness, thresholds and fetch wait;
// a short warm-up (replayed) and the run's end_windows.
func (l layout) detectorYAML(o options) string {
	return fmt.Sprintf(`instance: latency-detector
log_level: info
http_addr: "%[1]s"
inventory: %[2]s
kafka:
  brokers: %[3]s
  client_id: flowsentry-detector-latency
worker:
  group: latency-%[4]s-detector
  topics: {flows: %[5]sflows, anomalies: %[5]sanomalies, baselines: %[5]sbaselines, state: %[5]sdetector-state}
  start_offset: first
engine:
  window_seconds: %[6]d
  lateness_seconds: %[7]d
baseline:
  warmup_windows: %[8]d
classify:
  default: {start: 5, end: 2.5, start_windows: 1, end_windows: %[9]d}
`, l.detectorHTTP, filepath.Join(l.dir, "inventory.yaml"), yamlList(l.brokers), l.runID, l.prefix, windowSeconds,
		latenessSeconds, o.WarmupWindows, o.EndWindows)
}

// alerterYAML: every incident to Slack and the webhook, critical ones to
// PagerDuty too, all at the local receiver; no audit (ClickHouse is not on
// the notification path: the audit writer is asynchronous).
func (l layout) alerterYAML(o options) string {
	return fmt.Sprintf(`log_level: info
listen: "%[1]s"
instance: latency-alerter
kafka:
  brokers: %[2]s
  client_id: flowsentry-alerter-latency
consumer:
  topic: %[3]sanomalies
  group_id: latency-%[4]s-alerter
  start_offset: first
  session_timeout: 6s
audit:
  enabled: false
state:
  path: %[5]s
  dead_letter_path: %[6]s
api:
  tokens_env: LATENCY_ALERTER_TOKENS
route:
  receiver: noc-slack
  group_by: [customer]
  group_wait: %[7]s
  group_interval: %[8]s
  repeat_interval: 1h
  routes:
    - matchers: ["severity=critical"]
      receiver: noc-pagerduty
      group_by: [customer, subnet]
      continue: true
    - receiver: soc-webhook
      continue: true
    - receiver: noc-slack
receivers:
  - name: noc-slack
    slack: {webhook_url: {env: LATENCY_SLACK_WEBHOOK}}
  - name: noc-pagerduty
    pagerduty: {url: "%[9]s/v2/enqueue", routing_key: {env: LATENCY_PAGERDUTY_KEY}}
  - name: soc-webhook
    webhook: {url: "%[9]s/webhook", secret: {env: LATENCY_WEBHOOK_SECRET}}
`, l.alerterHTTP, yamlList(l.brokers), l.prefix, l.runID, filepath.Join(l.dir, "alerter-state.json"),
		filepath.Join(l.dir, "alerter-deadletter.jsonl"), o.GroupWait, o.GroupInterval, l.receiverURL)
}
