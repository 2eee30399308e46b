//go:build faults

package service

// Helpers of the fault-tolerance tests (make test-faults): a real
// bin/collector process on its own topic, a NetFlow v9 sender whose flows
// carry a sequence number (in_if), and a reader that counts them back out
// of Kafka.

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/collector/flowgen"
	"github.com/packetworks/flowsentry/schemas/dedup"
	"github.com/packetworks/flowsentry/schemas/faulttest"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { os.Exit(faulttest.Main(m)) }

// faultInventory protects 10.1.0.0/16 (no customer, so subnet keys are
// /24s): every flow the senders make is kept, spread over 64 subnets and
// so over every partition.
const faultInventory = `default_granularity: {ipv4: 24, ipv6: 64}
protected: [10.1.0.0/16]
`

// collectorProc is a real collector binary producing to its own topic.
type collectorProc struct {
	*faulttest.Proc
	id, topic, http string
	udp             netip.AddrPort
}

// startCollector runs bin/collector with one NetFlow socket and a fresh
// topic of 8 partitions; produce is extra YAML for the produce section
// (e.g. "buffer_bytes: 131072").
func startCollector(t *testing.T, name string, brokers []string, topic, produce string) *collectorProc {
	t.Helper()
	bin := faulttest.Build(t, "./collector/cmd/collector")
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(inv, []byte(faultInventory), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &collectorProc{id: "faults-" + name, topic: topic, http: faulttest.FreeTCPAddr(t)}
	udp := netip.MustParseAddrPort(freeUDP(t))
	c.udp = udp
	cfg := fmt.Sprintf(`collector_id: %s
log_level: warn
http_addr: %q
listeners:
  - {protocol: netflow, addr: %q, network: udp4, sockets: 1, read_buffer: 16777216}
inventory: %s
templates: {state_file: ""}
kafka: {brokers: [%q], client_id: %s}
produce:
  topic: %s
  linger: 200ms
  %s
`, c.id, c.http, udp.String(), inv, brokers[0], c.id, topic, produce)
	path := filepath.Join(dir, "collector.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Proc = faulttest.Start(t, name, bin, "-config", path)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := faulttest.Scrape(c.http); err == nil {
			return c
		}
		if done, err := c.Exited(); done {
			t.Fatalf("%s exited at start: %v\n%s", name, err, c.Tail(2000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no /metrics after 20 s\n%s", name, c.Tail(2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freeUDP(t *testing.T) string {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// metrics scrapes the collector's /metrics page.
func (c *collectorProc) metrics(t *testing.T) faulttest.Metrics {
	t.Helper()
	m, err := faulttest.Scrape(c.http)
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return m
}

// ready is the /readyz status code (0: no answer).
func (c *collectorProc) ready() int {
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Get("http://" + c.http + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// accounting is what a collector's counters say happened to the flows.
type accounting struct {
	decoded, produced, droppedQueue, droppedKafka, backlog float64
	socketDrops, decodeErrors, unprotected, badAddr        float64
}

func account(m faulttest.Metrics) accounting {
	return accounting{
		decoded:      m.Sum("collector_flows_decoded_total"),
		produced:     m.Sum("collector_flows_produced_total"),
		droppedQueue: m.Sum("collector_flows_dropped_total", `reason="queue"`),
		droppedKafka: m.Sum("collector_flows_dropped_total", `reason="kafka"`),
		backlog:      m.Sum("collector_produce_backlog_flows"),
		socketDrops:  m.Sum("collector_socket_drops_total"),
		decodeErrors: m.Sum("collector_decode_errors_total"),
		unprotected:  m.Sum("collector_flows_dropped_unprotected_total"),
		badAddr:      m.Sum("collector_flows_dropped_no_address_total"),
	}
}

// settled: every decoded flow was produced or counted as dropped.
func (a accounting) settled() bool {
	return a.backlog == 0 && a.produced+a.droppedQueue+a.droppedKafka+a.unprotected+a.badAddr == a.decoded
}

// waitSettled waits until the collector has accounted for every flow it
// decoded, and returns the final counters.
func (c *collectorProc) waitSettled(t *testing.T, d time.Duration) accounting {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		a := account(c.metrics(t))
		if a.settled() {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: flows not accounted for after %v: %+v", c.Name, d, a)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// flowSender sends NetFlow v9 datagrams of perDatagram flows; flow n of the
// stream has in_if = n, so the reader can tell every flow apart.
type flowSender struct {
	enc         flowgen.Encoder
	perDatagram int
	next        uint32
	conns       []*net.UDPConn
	buf         []flowgen.Flow
}

// newFlowSender sends from local address from (e.g. 127.0.0.2; "" for the
// default) to every address in to.
func newFlowSender(t *testing.T, from string, perDatagram int, to ...netip.AddrPort) *flowSender {
	t.Helper()
	s := &flowSender{enc: flowgen.Encoder{Version: 9, Boot: time.Now().Add(-time.Hour), SamplingRate: 1},
		perDatagram: perDatagram, next: 1}
	var laddr *net.UDPAddr
	if from != "" {
		laddr = &net.UDPAddr{IP: net.ParseIP(from)}
	}
	for _, a := range to {
		c, err := net.DialUDP("udp4", laddr, net.UDPAddrFromAddrPort(a))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		s.conns = append(s.conns, c)
	}
	return s
}

// datagram builds the next datagram (templates included, so that every
// datagram decodes on its own) and advances the sequence.
func (s *flowSender) datagram(now time.Time) []byte {
	s.buf = s.buf[:0]
	for i := 0; i < s.perDatagram; i++ {
		n := s.next
		s.next++
		s.buf = append(s.buf, flowgen.Flow{
			Src: netip.AddrFrom4([4]byte{192, 0, 2, byte(n)}), Dst: netip.AddrFrom4([4]byte{10, 1, byte(n % 64), 5}),
			SrcPort: uint16(1024 + n%50000), DstPort: 443, Proto: 6, TCPFlags: 0x18,
			Bytes: 1500, Packets: 1, Start: now.Add(-time.Second), End: now, InIf: n,
		})
	}
	return s.enc.Datagram(now, s.buf)
}

// send sends one datagram to every destination; it returns the error of
// the write (a full socket buffer on loopback blocks rather than fails).
func (s *flowSender) send(now time.Time) error {
	d := s.datagram(now)
	for _, c := range s.conns {
		if _, err := c.Write(d); err != nil {
			return err
		}
	}
	return nil
}

// sent is the number of flows sent so far (to each destination).
func (s *flowSender) sent() uint32 { return s.next - 1 }

// delivery is what a topic holds: flows of one collector by sequence, as
// a consumer sees them after dropping re-sent batches (schemas/dedup, as
// the sink and the detector do).
type delivery struct {
	total    int // flows after dedup
	seen     map[uint32]int
	others   int // flows of another collector id (must be none)
	messages int
	// Re-sent copies in the topic (same producer and sequence as a batch
	// read before), dropped by the dedup window.
	resentBatches, resentFlows int
	// Batches the window could not judge: no producer id, or below the
	// window (must be none).
	unidentified, tooOld int
}

// duplicates counts flows seen more than once after dedup.
func (d delivery) duplicates() int { return d.total - len(d.seen) }

// readTopic reads every partition of topic from the start until want
// distinct flows of collector id arrived and nothing more came for a
// second, or until d passes. keep (nil: all) selects the flows counted.
func readTopic(t *testing.T, brokers []string, topic, id string, want int, d time.Duration, keep func(*pb.Flow) bool) delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	out := delivery{seen: map[uint32]int{}}
	last := time.Now()
	var wg sync.WaitGroup
	for p := 0; p < 8; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p,
				MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 200 * time.Millisecond})
			defer r.Close()
			b := &pb.FlowBatch{}
			win := dedup.NewWindow(dedup.DefaultConfig())
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					return
				}
				if err := proto.Unmarshal(m.Value, b); err != nil {
					t.Errorf("%s/%d@%d: %v", topic, p, m.Offset, err)
					continue
				}
				v := win.Observe(p, dedup.Origin{Producer: b.ProducerId, Sequence: b.Sequence})
				mu.Lock()
				out.messages++
				switch v {
				case dedup.Duplicate:
					out.resentBatches++
					out.resentFlows += len(b.Flows)
					last = time.Now()
					mu.Unlock()
					continue
				case dedup.Unidentified:
					out.unidentified++
				case dedup.TooOld:
					out.tooOld++
				}
				for _, f := range b.Flows {
					if b.Collector != id {
						out.others++
						continue
					}
					if keep != nil && !keep(f) {
						continue
					}
					out.total++
					out.seen[f.InIf]++
				}
				last = time.Now()
				mu.Unlock()
			}
		}(p)
	}
	for ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		done := len(out.seen) >= want && time.Since(last) > time.Second
		mu.Unlock()
		if done {
			break
		}
	}
	cancel()
	wg.Wait()
	return out
}

// sampler scrapes collectors every interval and keeps the peaks.
type sampler struct {
	mu      sync.Mutex
	peakRSS map[string]int64
	peakBl  map[string]float64 // backlog bytes
	notOK   map[string]int     // /readyz answers other than 200
	stop    chan struct{}
	done    chan struct{}
}

func newSampler(t *testing.T, every time.Duration, cs ...*collectorProc) *sampler {
	s := &sampler{peakRSS: map[string]int64{}, peakBl: map[string]float64{}, notOK: map[string]int{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			for _, c := range cs {
				rss, _ := faulttest.RSS(c.Pid())
				m, err := faulttest.Scrape(c.http)
				ready := c.ready()
				s.mu.Lock()
				s.peakRSS[c.Name] = max(s.peakRSS[c.Name], rss)
				if err == nil {
					s.peakBl[c.Name] = max(s.peakBl[c.Name], m.Sum("collector_produce_backlog_bytes"))
				}
				if ready != http.StatusOK {
					s.notOK[c.Name]++
				}
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-tk.C:
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *sampler) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

func (s *sampler) get(name string) (rss int64, backlog float64, notOK int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peakRSS[name], s.peakBl[name], s.notOK[name]
}

const mib = 1 << 20
