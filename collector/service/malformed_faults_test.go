//go:build faults

package service

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/collector/flowgen"
	"github.com/packetworks/flowsentry/schemas/faulttest"
	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// malformed builds n bad datagrams of every kind an attacker or a broken
// exporter sends, from a fixed seed (a failure replays).
func malformed(n int, seed uint64) (out [][]byte, kinds map[string]int) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	kinds = map[string]int{}
	randBytes := func(l int) []byte {
		b := make([]byte, l)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	be := binary.BigEndian
	now := time.Now()
	fl := []flowgen.Flow{{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("10.1.0.5"), Proto: 17,
		Bytes: 100, Packets: 1, Start: now, End: now}}
	v9hdr := func(count uint16, domain uint32) []byte {
		b := be.AppendUint16(nil, 9)
		b = be.AppendUint16(b, count)
		b = be.AppendUint32(b, 1000)
		b = be.AppendUint32(b, uint32(now.Unix()))
		b = be.AppendUint32(b, r.Uint32())
		return be.AppendUint32(b, domain)
	}
	ipfixHdr := func(length uint16, domain uint32) []byte {
		b := be.AppendUint16(nil, 10)
		b = be.AppendUint16(b, length)
		b = be.AppendUint32(b, uint32(now.Unix()))
		b = be.AppendUint32(b, r.Uint32())
		return be.AppendUint32(b, domain)
	}
	// The garbage uses a handful of observation domains: the point is bad
	// bytes, not how many domains an exporter may claim.
	domain := func() uint32 { return r.Uint32N(4) }
	gens := []struct {
		kind string
		make func() []byte
	}{
		{"short", func() []byte { return randBytes(r.IntN(4)) }},
		{"random", func() []byte { return randBytes(4 + r.IntN(1400)) }},
		{"v5-random", func() []byte { return append([]byte{0, 5}, randBytes(2+r.IntN(1400))...) }},
		{"v5-huge-count", func() []byte {
			b := flowgen.NetFlowV5(flowgen.V5Header{Export: now, Boot: now.Add(-time.Hour)}, fl)
			be.PutUint16(b[2:], uint16(31+r.IntN(65000)))
			return b
		}},
		{"v9-random", func() []byte { return append(v9hdr(uint16(r.Uint32()), domain()), randBytes(r.IntN(1400))...) }},
		{"v9-template-truncated", func() []byte {
			e := flowgen.Encoder{Version: 9, Domain: domain(), Boot: now.Add(-time.Hour), SamplingRate: 10}
			b := e.Datagram(now, fl)
			return b[:20+r.IntN(len(b)-20)]
		}},
		{"v9-huge-field-count", func() []byte {
			b := v9hdr(1, domain())
			b = be.AppendUint16(b, 0)                       // template flowset
			b = be.AppendUint16(b, uint16(12+4*r.IntN(64))) // its length: far less than the fields claimed
			b = be.AppendUint16(b, uint16(256+r.IntN(8)))
			b = be.AppendUint16(b, uint16(1000+r.IntN(64536)))
			return append(b, randBytes(4*r.IntN(64))...)
		}},
		{"v9-huge-field-length", func() []byte {
			b := v9hdr(2, domain())
			b = be.AppendUint16(b, 0)
			b = be.AppendUint16(b, 16)
			tid := uint16(300 + r.IntN(4))
			b = be.AppendUint16(b, tid)
			b = be.AppendUint16(b, 2)
			b = be.AppendUint16(b, 8)
			b = be.AppendUint16(b, uint16(r.Uint32()))
			b = be.AppendUint16(b, 1)
			b = be.AppendUint16(b, 0) // zero-length field
			b = be.AppendUint16(b, tid)
			b = be.AppendUint16(b, uint16(4+r.IntN(64)))
			return append(b, randBytes(r.IntN(64))...)
		}},
		{"v9-options-garbage", func() []byte {
			b := v9hdr(1, domain())
			b = be.AppendUint16(b, 1) // options template flowset
			b = be.AppendUint16(b, uint16(10+r.IntN(100)))
			b = be.AppendUint16(b, 258)
			b = be.AppendUint16(b, uint16(r.Uint32())) // scope length
			b = be.AppendUint16(b, uint16(r.Uint32())) // option length
			return append(b, randBytes(r.IntN(100))...)
		}},
		{"ipfix-random", func() []byte {
			rest := randBytes(r.IntN(1400))
			return append(ipfixHdr(uint16(r.Uint32()), domain()), rest...)
		}},
		{"ipfix-template-truncated", func() []byte {
			e := flowgen.Encoder{Version: 10, Domain: domain(), Boot: now.Add(-time.Hour), SamplingRate: 10}
			b := e.Datagram(now, fl)
			b = b[:16+r.IntN(len(b)-16)]
			if r.IntN(2) == 0 {
				be.PutUint16(b[2:], uint16(len(b))) // consistent message length, sets run past it
			}
			return b
		}},
		{"ipfix-huge-field-count", func() []byte {
			body := be.AppendUint16(nil, 2) // template set
			body = be.AppendUint16(body, uint16(8+4*r.IntN(64)))
			body = be.AppendUint16(body, uint16(256+r.IntN(8)))
			body = be.AppendUint16(body, uint16(1000+r.IntN(64536)))
			body = append(body, randBytes(4*r.IntN(64))...)
			return append(ipfixHdr(uint16(16+len(body)), domain()), body...)
		}},
		{"ipfix-varlen-overrun", func() []byte {
			tid := uint16(400 + r.IntN(4))
			body := be.AppendUint16(nil, 2)
			body = be.AppendUint16(body, 12)
			body = be.AppendUint16(body, tid)
			body = be.AppendUint16(body, 1)
			body = be.AppendUint16(body, 82)     // interfaceName
			body = be.AppendUint16(body, 0xffff) // variable length
			data := []byte{0xff, byte(r.Uint32()), byte(r.Uint32())}
			data = append(data, randBytes(r.IntN(32))...)
			body = be.AppendUint16(body, tid)
			body = be.AppendUint16(body, uint16(4+len(data)))
			body = append(body, data...)
			return append(ipfixHdr(uint16(16+len(body)), domain()), body...)
		}},
		{"ipfix-enterprise-garbage", func() []byte {
			body := be.AppendUint16(nil, 2)
			body = be.AppendUint16(body, 16)
			body = be.AppendUint16(body, uint16(500+r.IntN(4)))
			body = be.AppendUint16(body, 2)
			body = be.AppendUint16(body, 0x8000|uint16(r.Uint32())) // enterprise bit: a PEN follows
			body = be.AppendUint16(body, uint16(r.Uint32()))
			body = be.AppendUint32(body, r.Uint32())
			return append(ipfixHdr(uint16(16+len(body)), domain()), body...)
		}},
		{"sflow-random", func() []byte {
			return append([]byte{0, 0, 0, 5}, randBytes(r.IntN(1400))...)
		}},
		{"sflow-huge-samples", func() []byte {
			b := flowgen.SFlow(flowgen.SFlowHeader{Agent: netip.MustParseAddr("127.0.0.1"), SamplingRate: 100}, fl)
			if len(b) > 28 {
				be.PutUint32(b[24:], 0x10000000|r.Uint32()) // sample count (IPv4 agent header: 28 bytes)
			}
			return b[:28+r.IntN(len(b)-28)]
		}},
		{"sflow-record-overrun", func() []byte {
			b := flowgen.SFlow(flowgen.SFlowHeader{Agent: netip.MustParseAddr("127.0.0.1"), SamplingRate: 100, Expanded: r.IntN(2) == 0}, fl)
			for i := 0; i < 3; i++ { // corrupt a few length fields
				at := 28 + 4*r.IntN((len(b)-32)/4)
				be.PutUint32(b[at:], r.Uint32())
			}
			return b
		}},
	}
	for i := 0; i < n; i++ {
		g := gens[i%len(gens)]
		out = append(out, g.make())
		kinds[g.kind]++
	}
	return out, kinds
}

// softnetDrops is the kernel's count of packets dropped because a CPU's
// input backlog was full (/proc/net/softnet_stat, second column, all
// CPUs): loopback datagrams lost there never reach the socket, so the
// collector cannot count them.
func softnetDrops() uint64 {
	b, err := os.ReadFile("/proc/net/softnet_stat")
	if err != nil {
		return 0
	}
	var n uint64
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			v, _ := strconv.ParseUint(f[1], 16, 64)
			n += v
		}
	}
	return n
}

// TestFaultMalformedFlood: two senders blast malformed datagrams (random
// bytes, truncated templates, huge field and record counts, overrunning
// lengths: 17 kinds) at the real collector as fast as they can for
// FAULTS_FLOOD_SECONDS (default 10) from 127.0.0.1, while a real exporter
// at 127.0.0.2 sends 4000 flows/s. The collector stays up, decodes every
// real datagram that reached it into Kafka (real datagrams missing are
// fewer than the socket drops it counted), counts the garbage by reason in
// /metrics, and keeps its memory bounded.
func TestFaultMalformedFlood(t *testing.T) {
	dur, err := faulttest.Seconds("FAULTS_FLOOD_SECONDS", 10)
	if err != nil {
		t.Fatal(err)
	}
	brokers := itest.KafkaBrokers(t)
	c := startCollector(t, "flood", brokers, itest.Topic(t, brokers, "faults-flood", 8), "buffer_bytes: 268435456")
	corpus, kinds := malformed(17*256, 9)
	t.Logf("corpus: %d datagrams, %d kinds", len(corpus), len(kinds))

	real := newFlowSender(t, "127.0.0.2", 20, c.udp)
	rssBefore, _ := faulttest.RSS(c.Pid())
	softBefore := softnetDrops()
	var peakRSS atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var flooded atomic.Int64
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			conn, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, net.UDPAddrFromAddrPort(c.udp))
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			var n int64
			for i := g; ; i++ {
				if i%256 == 0 {
					select {
					case <-stop:
						flooded.Add(n)
						return
					default:
					}
				}
				if _, err := conn.Write(corpus[i%len(corpus)]); err == nil {
					n++
				}
			}
		}(g)
	}
	realDone := make(chan struct{})
	go func() {
		defer close(realDone)
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		end := time.Now().Add(dur + time.Second) // and a second after the flood: drops are reported by later datagrams
		for now := range tk.C {
			if now.After(end) {
				return
			}
			if err := real.send(now); err != nil {
				t.Errorf("real sender: %v", err)
				return
			}
			if rss, err := faulttest.RSS(c.Pid()); err == nil && rss > peakRSS.Load() {
				peakRSS.Store(rss)
			}
		}
	}()
	time.Sleep(dur)
	close(stop)
	wg.Wait()
	<-realDone
	softAfter := softnetDrops()

	if done, err := c.Exited(); done {
		t.Fatalf("the collector died during the flood: %v\n%s", err, c.Tail(3000))
	}
	a := c.waitSettled(t, 60*time.Second)
	m := c.metrics(t)
	sentDg := int(real.sent()) / 20
	realDg := m.Sum("collector_datagrams_total", `exporter="127.0.0.2"`)
	realFlows := m.Sum("collector_flows_decoded_total", `exporter="127.0.0.2"`)
	reasons := m.Labels("collector_decode_errors_total", "reason")
	garbage := m.Sum("collector_datagrams_total", `exporter="127.0.0.1"`)
	t.Logf("flood: %d malformed datagrams sent in %v (%.0f/s), %.0f reached the decoder; socket drops %.0f; softnet drops %d",
		flooded.Load(), dur, float64(flooded.Load())/dur.Seconds(), garbage, a.socketDrops, softAfter-softBefore)
	t.Logf("decode errors by reason: %v", reasons)
	t.Logf("real exporter: %d datagrams sent, %.0f received, %.0f flows decoded; RSS %.1f MiB before, peak %.1f MiB",
		sentDg, realDg, realFlows, float64(rssBefore)/mib, float64(peakRSS.Load())/mib)

	if e := m.Sum("collector_decode_errors_total", `exporter="127.0.0.2"`); e != 0 {
		t.Errorf("%.0f decode errors for the real exporter", e)
	}
	if realFlows != 20*realDg {
		t.Errorf("real exporter: %.0f flows decoded from %.0f datagrams of 20", realFlows, realDg)
	}
	if missing := float64(sentDg) - realDg; missing < 0 || missing > a.socketDrops {
		t.Errorf("real exporter: %.0f of %d datagrams missing, only %.0f socket drops counted (softnet drops %d)",
			missing, sentDg, a.socketDrops, softAfter-softBefore)
	}
	fromReal := func(f *pb.Flow) bool { return bytes.Equal(f.SamplerAddress, []byte{127, 0, 0, 2}) }
	got := readTopic(t, brokers, c.topic, c.id, int(realFlows), 60*time.Second, fromReal)
	if float64(len(got.seen)) != realFlows || got.duplicates() != 0 {
		t.Errorf("Kafka holds %d distinct real flows (%d duplicates), %.0f were decoded", len(got.seen), got.duplicates(), realFlows)
	}
	for n := range got.seen {
		if n == 0 || n > real.sent() {
			t.Errorf("flow with sequence %d in Kafka, never sent", n)
			break
		}
	}
	// Every kind of garbage is counted under a reason.
	for _, r := range []string{"short", "version", "malformed", "template", "truncated", "count"} {
		if reasons[r] == 0 {
			t.Errorf("no decode errors counted with reason %q", r)
		}
	}
	if reasons["panic"] > 0 {
		t.Logf("%.0f decoder panics were recovered", reasons["panic"])
	}
	if grow := peakRSS.Load() - rssBefore; grow > 128*mib {
		t.Errorf("RSS grew by %.1f MiB during the flood", float64(grow)/mib)
	}
	if code := c.ready(); code != 200 {
		t.Errorf("/readyz %d after the flood", code)
	}
}
