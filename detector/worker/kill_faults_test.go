//go:build faults

package worker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/detector/classify"
	"github.com/packetworks/flowsentry/detector/synth"
	"github.com/packetworks/flowsentry/schemas/faulttest"
	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/packetworks/flowsentry/schemas/topics"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
)

const (
	fSec      = int64(1e9)
	fT0       = int64(1717977600) * fSec // a Monday, 00:00 UTC
	fWarmWins = 30
	fWin      = 10 * fSec
	fParts    = 4
)

func TestMain(m *testing.M) { os.Exit(faulttest.Main(m)) }

// detectorProc is a real bin/detector process.
type detectorProc struct {
	*faulttest.Proc
	name, http string
}

func (d *detectorProc) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	m, err := faulttest.Scrape(d.http)
	if err != nil {
		t.Fatalf("%s: %v", d.name, err)
	}
	return m.Sum(name, labels...)
}

// killEnv is one run: its own topics and consumer group.
type killEnv struct {
	brokers []string
	group   string
	tp      Topics
	prod    *kafka.Writer
	gens    []*synth.Gen
	subnets []string
	tt      int64 // next event second to produce

	mu     sync.Mutex
	events []*pb.AnomalyEvent
}

func newKillEnv(t *testing.T) *killEnv {
	brokers := itest.KafkaBrokers(t)
	e := &killEnv{brokers: brokers, group: "detector-faults-" + itest.RandomID(), tt: fT0, tp: Topics{
		Flows:     itest.Topic(t, brokers, "faults-flows", fParts),
		State:     itest.Topic(t, brokers, "faults-detector-state", fParts),
		Anomalies: itest.Topic(t, brokers, "faults-anomalies", 1),
		Baselines: itest.Topic(t, brokers, "faults-baselines", 1),
	}}
	e.prod = &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: e.tp.Flows, Balancer: &kafka.Murmur2Balancer{},
		BatchTimeout: 2 * time.Millisecond, BatchSize: 500, RequiredAcks: kafka.RequireAll}
	t.Cleanup(func() { e.prod.Close() })
	// Four subnets on at least two partitions, so each worker owns one.
	parts := map[int]bool{}
	for i := 0; len(e.subnets) < 4 || len(parts) < 2; i++ {
		s := fmt.Sprintf("198.51.%d.0/24", 100+i)
		parts[topics.Partition([]byte(s), fParts)] = true
		e.subnets = append(e.subnets, s)
		e.gens = append(e.gens, synth.New(s, fmt.Sprintf("cust%d", i), uint64(i+1)))
	}
	go e.readEvents(t)
	return e
}

// start runs a detector named name that checkpoints every cp seconds.
func (e *killEnv) start(t *testing.T, name string, cp int) *detectorProc {
	t.Helper()
	bin := faulttest.Build(t, "./detector/cmd/detector")
	d := &detectorProc{name: name, http: faulttest.FreeTCPAddr(t)}
	cfg := fmt.Sprintf(`instance: %s
log_level: warn
http_addr: %q
kafka: {brokers: [%q], client_id: faults-%s}
worker:
  group: %s
  topics: {flows: %s, anomalies: %s, baselines: %s, state: %s}
  start_offset: first
  checkpoint_seconds: %d
  session_timeout_seconds: 6
  heartbeat_seconds: 1
  fetch_max_wait_ms: 50
engine:
  lateness_seconds: 2
baseline:
  warmup_windows: %d
`, name, d.http, e.brokers[0], name, e.group, e.tp.Flows, e.tp.Anomalies, e.tp.Baselines, e.tp.State, cp, fWarmWins)
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d.Proc = faulttest.Start(t, name, bin, "-config", path)
	fWait(t, name+" /metrics", 20*time.Second, func() bool {
		_, err := faulttest.Scrape(d.http)
		return err == nil
	})
	return d
}

// second produces one event second of every subnet (the victim under
// attack when attack is set), one FlowBatch per subnet keyed by it.
func (e *killEnv) second(t *testing.T, attack bool) {
	var msgs []kafka.Message
	for i, g := range e.gens {
		fl := g.Normal(e.tt, 10000, 250)
		if attack && i == 0 {
			fl = append(fl, g.Attack(synth.AttackUDP, e.tt, 100000)...)
		}
		b, err := proto.Marshal(&pb.FlowBatch{Flows: fl, Collector: "faults"})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(e.subnets[i]), Value: b})
	}
	if err := e.prod.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	e.tt += fSec
}

func (e *killEnv) readEvents(t *testing.T) {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.brokers, Topic: e.tp.Anomalies, Partition: 0,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); r.Close() })
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Logf("anomalies reader: %v", err)
			}
			return
		}
		ev := &pb.AnomalyEvent{}
		if err := proto.Unmarshal(m.Value, ev); err != nil {
			t.Errorf("anomaly event: %v", err)
			continue
		}
		e.mu.Lock()
		e.events = append(e.events, ev)
		e.mu.Unlock()
	}
}

func (e *killEnv) find(kind pb.AnomalyEvent_Kind, detector string) *pb.AnomalyEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.events {
		if ev.Kind == kind && (detector == "" || ev.Detector == detector) {
			return ev
		}
	}
	return nil
}

func fWait(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFaultWorkerKilledMidAttack: two real detector processes share the
// flows topic; a UDP flood hits a warm subnet; once its START is on the
// anomalies topic the worker that owns the subnet is SIGKILLed (no final
// checkpoint, no group leave). The other takes over its partitions after
// the session timeout, restores their state from the state topic, replays
// the flows after the last committed offset and ends the incident.
//
//   - after-checkpoint: the owner checkpointed after the START (2 s
//     interval), so the open anomaly is in the restored state: exactly one
//     START overall; the survivor's UPDATE/END carry the same anomaly id.
//   - before-checkpoint: the owner had not checkpointed since before the
//     attack (12 s interval, kill within a few seconds of the last one):
//     the survivor replays the attack and sends a second START with the
//     same anomaly id and seq 0, which consumers drop as a duplicate
//     (alerter/incident: an event whose seq is not above the incident's
//     last is a duplicate), then the END with that id.
//
// In both cases: one anomaly id for the incident, an END from the
// survivor, no event for any other subnet.
func TestFaultWorkerKilledMidAttack(t *testing.T) {
	for _, c := range []struct {
		name       string
		checkpoint int
		wantStarts int
	}{
		{"after-checkpoint", 2, 1},
		{"before-checkpoint", 12, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newKillEnv(t)
			procs := map[string]*detectorProc{"a": e.start(t, "a", c.checkpoint), "b": e.start(t, "b", c.checkpoint)}
			fWait(t, "both detectors own partitions", 60*time.Second, func() bool {
				pa, pb := procs["a"].metric(t, "detector_partitions_owned"), procs["b"].metric(t, "detector_partitions_owned")
				return pa > 0 && pb > 0 && pa+pb == fParts
			})
			// Warm-up: 32 windows of normal traffic.
			for e.tt < fT0+(fWarmWins+2)*fWin {
				e.second(t, false)
			}
			warmEnd := float64((fT0 + fWarmWins*fWin) / fSec)
			fWait(t, "the warm-up consumed", 60*time.Second, func() bool {
				for _, s := range e.subnets {
					p := fmt.Sprint(topics.Partition([]byte(s), fParts))
					if max(procs["a"].metric(t, "detector_watermark_seconds", `partition="`+p+`"`),
						procs["b"].metric(t, "detector_watermark_seconds", `partition="`+p+`"`)) < warmEnd {
						return false
					}
				}
				return true
			})
			// Two checkpoints after that: the second one began after the
			// warm-up was read, so the warm baselines are in the state topic.
			cps := map[string]float64{}
			for n, d := range procs {
				cps[n] = d.metric(t, "detector_checkpoints_total", `outcome="ok"`)
			}
			for n, d := range procs {
				fWait(t, n+" checkpoints after the warm-up", time.Duration(3*c.checkpoint+10)*time.Second, func() bool {
					return d.metric(t, "detector_checkpoints_total", `outcome="ok"`) >= cps[n]+2
				})
			}
			for n, d := range procs {
				cps[n] = d.metric(t, "detector_checkpoints_total", `outcome="ok"`)
			}
			attackAt := time.Now()
			attackFrom := e.tt
			for e.tt < attackFrom+3*fWin {
				e.second(t, true)
			}
			fWait(t, "START", 30*time.Second, func() bool { return e.find(pb.AnomalyEvent_START, "") != nil })
			startSeen := time.Since(attackAt)
			start := e.find(pb.AnomalyEvent_START, "")
			owner := procs[start.Detector]
			if owner == nil || start.Subnet != e.subnets[0] || start.Class != classify.UDPFlood {
				t.Fatalf("START %s %s %s by %q", start.Subnet, start.Class, start.Id, start.Detector)
			}
			survivor := procs["a"]
			if owner == survivor {
				survivor = procs["b"]
			}
			sinceCp := owner.metric(t, "detector_checkpoints_total", `outcome="ok"`) - cps[owner.name]
			switch c.name {
			case "after-checkpoint":
				fWait(t, "two checkpoints after the START", 20*time.Second, func() bool {
					return owner.metric(t, "detector_checkpoints_total", `outcome="ok"`) >= cps[owner.name]+sinceCp+2
				})
			case "before-checkpoint":
				if sinceCp != 0 || time.Since(attackAt) > time.Duration(c.checkpoint-2)*time.Second {
					t.Fatalf("%s checkpointed %v times since the attack began %v ago: the kill would not land before a checkpoint",
						owner.name, sinceCp, time.Since(attackAt).Round(time.Millisecond))
				}
			}
			sinceCp = owner.metric(t, "detector_checkpoints_total", `outcome="ok"`) - cps[owner.name]
			owner.Kill()
			killedAt := time.Now()
			t.Logf("START %s by %s read %v after the attack began; %s SIGKILLed at %v, %v checkpoints after the attack began",
				start.Id, owner.name, startSeen.Round(time.Millisecond), owner.name, killedAt.Sub(attackAt).Round(time.Millisecond), sinceCp)

			// The attack goes on for a minute, then a minute of normal traffic.
			for end := e.tt + 6*fWin; e.tt < end; {
				e.second(t, true)
			}
			for end := e.tt + 6*fWin; e.tt < end; {
				e.second(t, false)
			}
			fWait(t, "END from the survivor", 90*time.Second, func() bool {
				return e.find(pb.AnomalyEvent_END, survivor.name) != nil
			})
			t.Logf("END by %s %v after the kill; %s restored %.0f state records, owns %.0f partitions",
				survivor.name, time.Since(killedAt).Round(time.Millisecond), survivor.name,
				survivor.metric(t, "detector_state_restored_total", `outcome="ok"`), survivor.metric(t, "detector_partitions_owned"))
			time.Sleep(time.Second) // anything that would follow the END

			e.mu.Lock()
			events := slices.Clone(e.events)
			e.mu.Unlock()
			ids := map[string]bool{}
			starts, ends := 0, 0
			for _, ev := range events {
				t.Logf("event %s %s seq %d by %s id %s", ev.Kind, ev.Subnet, ev.Seq, ev.Detector, ev.Id)
				if ev.Subnet != e.subnets[0] {
					t.Errorf("event for %s (not attacked): %s %s", ev.Subnet, ev.Kind, ev.Class)
					continue
				}
				ids[ev.Id] = true
				switch ev.Kind {
				case pb.AnomalyEvent_START:
					starts++
					if ev.Seq != 0 {
						t.Errorf("START with seq %d", ev.Seq)
					}
				case pb.AnomalyEvent_END:
					ends++
				}
			}
			if len(ids) != 1 {
				t.Errorf("%d anomaly ids for one attack: %v", len(ids), ids)
			}
			if starts != c.wantStarts {
				t.Errorf("%d STARTs, want %d", starts, c.wantStarts)
			}
			if ends != 1 {
				t.Errorf("%d ENDs, want 1", ends)
			}
			if c.wantStarts == 2 {
				if s := e.find(pb.AnomalyEvent_START, survivor.name); s == nil || s.Id != start.Id {
					t.Errorf("no replayed START with id %s from %s", start.Id, survivor.name)
				}
			}
		})
	}
}
