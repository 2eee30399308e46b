//go:build faults

package service

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/schemas/faulttest"
	"github.com/packetworks/flowsentry/schemas/itest"
)

// TestFaultKafkaBrokerDown: the shared broker is stopped for
// FAULTS_KAFKA_DOWN_SECONDS (default 30) and restarted while two real
// collectors receive the same steady NetFlow stream (2000 flows/s):
//
//   - roomy (the default 256 MiB buffer): every flow sent, before, during and
//     after the outage, is in Kafka, and exactly once after dropping re-sent
//     batches by (producer_id, sequence) (schemas/dedup); nothing is counted as
//     dropped, and the process's memory grows by about what the backlog
//     holds, not by a buffer per queued batch;
//   - small (buffer_bytes 128 KiB, under a second of this stream): flows in
//     Kafka + flows counted as dropped == flows sent, exactly.
//
// Both answer /readyz with an error while the broker is away.
func TestFaultKafkaBrokerDown(t *testing.T) {
	down, err := faulttest.Seconds("FAULTS_KAFKA_DOWN_SECONDS", 30)
	if err != nil {
		t.Fatal(err)
	}
	brokers := itest.KafkaBrokers(t)
	roomy := startCollector(t, "roomy", brokers, itest.Topic(t, brokers, "faults-flows", 8), "buffer_bytes: 268435456")
	small := startCollector(t, "small", brokers, itest.Topic(t, brokers, "faults-flows", 8), "buffer_bytes: 131072")
	cs := []*collectorProc{roomy, small}

	// The stream: one datagram of 20 flows every 10 ms to both collectors.
	snd := newFlowSender(t, "", 20, roomy.udp, small.udp)
	var mu sync.Mutex
	stopSend := make(chan struct{})
	sendDone := make(chan struct{})
	go func() {
		defer close(sendDone)
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopSend:
				return
			case now := <-tk.C:
				mu.Lock()
				err := snd.send(now)
				mu.Unlock()
				if err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}
	}()
	sent := func() uint32 { mu.Lock(); defer mu.Unlock(); return snd.sent() }

	// Both deliver before the fault.
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range cs {
		for account(c.metrics(t)).produced == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s produced nothing within 30 s", c.Name)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	time.Sleep(3 * time.Second)
	rssBefore := map[string]int64{}
	for _, c := range cs {
		rssBefore[c.Name], _ = faulttest.RSS(c.Pid())
	}
	smp := newSampler(t, 500*time.Millisecond, cs...)

	outage := faulttest.StopKafka(t)
	downFrom := sent()
	time.Sleep(down)
	downTo := sent()
	backlogDown := map[string]accounting{}
	for _, c := range cs {
		backlogDown[c.Name] = account(c.metrics(t))
	}
	outage.Restart(t)
	t.Logf("broker away %v: flows %d..%d sent meanwhile; backlog then: roomy %.0f flows (%.0f dropped), small %.0f flows (%.0f dropped)",
		time.Since(outage.StoppedAt).Round(time.Second), downFrom, downTo,
		backlogDown["roomy"].backlog, backlogDown["roomy"].droppedQueue, backlogDown["small"].backlog, backlogDown["small"].droppedQueue)

	// A few seconds of stream after the return, then stop and settle.
	time.Sleep(5 * time.Second)
	close(stopSend)
	<-sendDone
	total := int(sent())
	final := map[string]accounting{}
	for _, c := range cs {
		final[c.Name] = c.waitSettled(t, 120*time.Second)
	}
	smp.close()

	deliv := map[string]delivery{}
	for _, c := range cs {
		a := final[c.Name]
		got := readTopic(t, brokers, c.topic, c.id, int(a.produced), 60*time.Second, nil)
		deliv[c.Name] = got
		peakRSS, peakBacklog, notReady := smp.get(c.Name)
		t.Logf("%s: sent %d, decoded %.0f, in Kafka %d (%d distinct, %d messages), dropped queue %.0f kafka %.0f; "+
			"peak backlog %.1f MiB, RSS %.1f MiB before the fault, peak %.1f MiB; /readyz not OK in %d samples",
			c.Name, total, a.decoded, got.total, len(got.seen), got.messages, a.droppedQueue, a.droppedKafka,
			peakBacklog/mib, float64(rssBefore[c.Name])/mib, float64(peakRSS)/mib, notReady)
		// Nothing lost before the producer: the stream is slow enough.
		if a.decoded != float64(total) || a.socketDrops != 0 || a.decodeErrors != 0 || a.unprotected+a.badAddr != 0 {
			t.Errorf("%s: decoded %.0f of %d sent (socket drops %.0f, decode errors %.0f, unprotected %.0f, no address %.0f)",
				c.Name, a.decoded, total, a.socketDrops, a.decodeErrors, a.unprotected, a.badAddr)
		}
		if got.others != 0 {
			t.Errorf("%s: %d flows of another collector in the topic", c.Name, got.others)
		}
		// Writes to Kafka are at-least-once (kafka-go has no idempotent
		// producer: a batch whose acknowledgement was lost while the broker
		// went away is sent again), but every batch carries (producer_id,
		// sequence): a consumer with the dedup window, as the sink and the
		// detector have, sees every flow exactly once.
		t.Logf("%s: the topic holds %d re-sent batches (%d flows) after lost acknowledgements; dropped by the dedup window",
			c.Name, got.resentBatches, got.resentFlows)
		if dup := got.duplicates(); dup != 0 {
			t.Errorf("%s: %d flows seen twice after dedup", c.Name, dup)
		}
		if got.unidentified != 0 || got.tooOld != 0 {
			t.Errorf("%s: %d batches without a producer id, %d below the dedup window", c.Name, got.unidentified, got.tooOld)
		}
		if float64(len(got.seen)) != a.produced {
			t.Errorf("%s: %d distinct flows in Kafka, the collector counted %.0f produced", c.Name, len(got.seen), a.produced)
		}
		if notReady == 0 {
			t.Errorf("%s: /readyz never failed while the broker was down", c.Name)
		}
		if code := c.ready(); code != http.StatusOK {
			t.Errorf("%s: /readyz %d after the broker came back", c.Name, code)
		}
	}

	// roomy: everything delivered, nothing dropped.
	r := final["roomy"]
	got := deliv["roomy"]
	if r.droppedQueue+r.droppedKafka != 0 {
		t.Errorf("roomy dropped %.0f (queue) + %.0f (kafka) flows with a 256 MiB buffer", r.droppedQueue, r.droppedKafka)
	}
	missing, missingDown := 0, 0
	for n := uint32(1); n <= uint32(total); n++ {
		if got.seen[n] == 0 {
			missing++
			if n > downFrom && n <= downTo {
				missingDown++
			}
		}
	}
	if missing != 0 {
		t.Errorf("roomy: %d of %d flows missing from Kafka, %d of them sent while the broker was down", missing, total, missingDown)
	}
	// Memory follows the backlog: the queue must not pin a 132 KiB batch
	// buffer per small batch (the bug this test found).
	peakRSS, peakBacklog, _ := smp.get("roomy")
	if grow := peakRSS - rssBefore["roomy"]; float64(grow) > 3*peakBacklog+64*mib {
		t.Errorf("roomy: RSS grew by %.1f MiB during the outage for a backlog of at most %.1f MiB",
			float64(grow)/mib, peakBacklog/mib)
	}

	// small: delivered + counted drops == sent, exactly.
	s := final["small"]
	gotS := deliv["small"]
	if s.droppedQueue == 0 {
		t.Errorf("small: nothing dropped with a 128 KiB buffer and %v of outage", down)
	}
	if float64(len(gotS.seen))+s.droppedQueue+s.droppedKafka != float64(total) {
		t.Errorf("small: %d flows in Kafka + %.0f + %.0f counted drops != %d sent",
			len(gotS.seen), s.droppedQueue, s.droppedKafka, total)
	}
	peakRSS, _, _ = smp.get("small")
	if grow := peakRSS - rssBefore["small"]; grow > 64*mib {
		t.Errorf("small: RSS grew by %.1f MiB with a 128 KiB buffer", float64(grow)/mib)
	}
}
