//go:build integration

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/alerter/notify"
	"github.com/packetworks/flowsentry/alerter/notify/notifytest"
	"github.com/packetworks/flowsentry/alerter/state"
	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
)

const crashConfig = `
log_level: info
listen: 127.0.0.1:0
kafka: {brokers: [%q]}
consumer: {topic: %q, group_id: %q, commit_interval: %s, start_offset: first, session_timeout: 6s}
clickhouse: {addr: [%q], dial_timeout: 1s}
audit: {enabled: true, flush_interval: 200ms}
state: {path: %q, dead_letter_path: %q}
incidents: {tick: 100ms, resolve_after: 10m}
api: {tokens_env: TEST_TOKENS}
retry: {initial_backoff: 100ms, max_backoff: 500ms, max_elapsed: 30s}
route:
  receiver: slack
  group_by: [customer]
  group_wait: 0s
  group_interval: 1s
  routes:
    - matchers: ["severity=critical"]
      receiver: pd
      group_by: [customer, subnet]
      group_wait: 2s
      continue: true
    - receiver: slack
receivers:
  - name: slack
    slack: {webhook_url: {env: TEST_SLACK_URL}}
  - name: pd
    pagerduty: {url: %q, routing_key: {env: TEST_PD_KEY}}
`

// TestKilledBetweenSendAndCommit runs the real binary against the real
// broker and kills it (SIGKILL) at the two dangerous moments: after
// PagerDuty accepted a trigger but before the outcome was recorded, and
// after the outcome was recorded but before the offset was committed.
// Expected: one PagerDuty incident (dedup_key), one Slack message per state
// change, nothing lost, offsets committed in the end.
func TestKilledBetweenSendAndCommit(t *testing.T) {
	brokers := itest.KafkaBrokers(t)
	topic := itest.Topic(t, brokers, "alerter-crash", 2)
	group := "alerter-crash-" + itest.RandomID()
	dir := t.TempDir()
	bin := filepath.Join(dir, "alerter")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	slack, pd := notifytest.NewSlack(t), notifytest.NewPagerDuty(t)
	statePath := filepath.Join(dir, "state.json")
	// ClickHouse "down": a closed port. Notifications must flow anyway.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	deadCH := ln.Addr().String()
	ln.Close()
	writeConfig := func(commit string) string {
		p := filepath.Join(dir, "alerter-"+commit+".yaml")
		body := fmt.Sprintf(crashConfig, brokers[0], topic, group, commit, deadCH, statePath,
			filepath.Join(dir, "deadletter.jsonl"), pd.URL+"/v2/enqueue")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	never, often := writeConfig("1h"), writeConfig("200ms")

	var mu sync.Mutex
	var cur *exec.Cmd
	run := 0
	start := func(cfg string) *exec.Cmd {
		run++
		logf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("run%d.log", run)))
		cmd := exec.Command(bin, "-config", cfg)
		cmd.Env = append(os.Environ(), "TEST_SLACK_URL="+slack.URL, "TEST_PD_KEY=routingkey0000000000000000000000",
			"TEST_TOKENS=t:operator:abcdefghijklmnopqrstuvwxyz", "FLOWSENTRY_CH_WRITER_PASSWORD=x")
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		cur = cmd
		mu.Unlock()
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
		return cmd
	}
	dumpLogs := func() {
		for i := 1; i <= run; i++ {
			b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("run%d.log", i)))
			t.Logf("run %d log:\n%s", i, b)
		}
	}
	wait := func(what string, d time.Duration, f func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !f() {
			if time.Now().After(deadline) {
				dumpLogs()
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	told := func(receiver string) bool {
		s, err := (&state.File{Path: statePath}).Load()
		if err != nil {
			return false
		}
		for _, e := range s.Log {
			if e.Receiver == receiver && e.Incident == "inc-1" && e.ToldSeverity == "critical" {
				return true
			}
		}
		return false
	}

	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	produce := func(kind pb.AnomalyEvent_Kind, seq uint32) {
		ev := &pb.AnomalyEvent{Id: "inc-1", Kind: kind, Seq: seq, Class: "syn_flood", Severity: pb.Severity_SEVERITY_CRITICAL,
			Customer: "acme", Subnet: "203.0.113.0/24", Direction: pb.Direction_DIRECTION_INBOUND, Metric: "pps_syn", Unit: "pps",
			Observed: 2e6, Expected: 1e4, StartedAtNs: uint64(time.Now().Add(-time.Minute).UnixNano()), Reason: "below threshold"}
		if kind == pb.AnomalyEvent_END {
			ev.EndedAtNs = uint64(time.Now().UnixNano())
		}
		b, _ := proto.Marshal(ev)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(ev.Id), Value: b}); err != nil {
			t.Fatal(err)
		}
	}

	// Run 1: PagerDuty accepts the trigger, and the alerter dies before
	// it can record that (the answer never reaches it).
	kills := 0
	pd.Hold = func(ev notify.PagerDutyEvent) {
		mu.Lock()
		defer mu.Unlock()
		if ev.EventAction == "trigger" && kills == 0 {
			kills++
			_ = cur.Process.Kill()
			_ = cur.Wait()
		}
	}
	start(never)
	produce(pb.AnomalyEvent_START, 0)
	wait("slack firing recorded", 60*time.Second, func() bool { return told("slack") })
	wait("pagerduty trigger (and the kill)", 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return kills == 1 })
	if told("pd") {
		t.Fatal("outcome recorded although the alerter died before the answer")
	}

	// Run 2: the START is re-read (never committed); the trigger is sent
	// again with the same dedup_key; Slack's recorded outcome suppresses
	// a second message. Killed once the PagerDuty outcome is on disk.
	start(never)
	wait("second trigger recorded", 60*time.Second, func() bool { return told("pd") })
	mu.Lock()
	_ = cur.Process.Kill()
	_ = cur.Wait()
	mu.Unlock()
	if n := len(slack.Messages()); n != 1 {
		t.Fatalf("slack messages after run 2: %d, want 1", n)
	}
	if opened, _, _ := pd.Incidents(); opened != 1 || len(pd.Events()) != 2 {
		t.Fatalf("pagerduty: %d incidents from %d events, want 1 from 2", opened, len(pd.Events()))
	}

	// Run 3: the START is re-read once more and changes nothing; it gets
	// committed; the END then resolves everywhere once.
	proc := start(often)
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	committed := func() int64 {
		resp, err := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group,
			Topics: map[string][]int{topic: {0, 1}}})
		if err != nil {
			return -1
		}
		var sum int64
		for _, p := range resp.Topics[topic] {
			if p.CommittedOffset > 0 {
				sum += p.CommittedOffset
			}
		}
		return sum
	}
	wait("START committed", 60*time.Second, func() bool { return committed() == 1 })
	time.Sleep(2500 * time.Millisecond) // past the PagerDuty route's group_wait
	if len(slack.Messages()) != 1 || len(pd.Events()) != 2 {
		t.Fatalf("re-read START sent again: slack %d pd %d", len(slack.Messages()), len(pd.Events()))
	}
	produce(pb.AnomalyEvent_END, 1)
	wait("resolves", 30*time.Second, func() bool { return len(slack.Messages()) == 2 && len(pd.Events()) == 3 })
	wait("END committed", 30*time.Second, func() bool { return committed() == 2 })
	_ = proc.Process.Signal(syscall.SIGTERM)
	if err := proc.Wait(); err != nil {
		dumpLogs()
		t.Fatalf("graceful stop: %v", err)
	}
	opened, resolved, open := pd.Incidents()
	if opened != 1 || resolved != 1 || open != 0 {
		t.Fatalf("pagerduty incidents opened %d resolved %d open %d", opened, resolved, open)
	}
	if ev := pd.Events()[2]; ev.EventAction != "resolve" || ev.DedupKey != "inc-1" {
		t.Fatalf("last event %+v", ev)
	}
	b, _ := json.Marshal(slack.Messages()[1])
	if !strings.Contains(string(b), "RESOLVED") {
		t.Fatalf("second slack message is not the resolve: %s", b)
	}
	if p := append(slack.Problems(), pd.Problems()...); len(p) > 0 {
		t.Fatal(p)
	}
	time.Sleep(300 * time.Millisecond)
	if len(slack.Messages()) != 2 || len(pd.Events()) != 3 {
		t.Fatal("extra notifications after the end")
	}
	if st, err := os.Stat(statePath); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode: %v %v", st.Mode(), err)
	}
}
