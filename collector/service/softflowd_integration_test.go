//go:build integration

package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/collector/config"
	"github.com/packetworks/flowsentry/collector/flowgen"
	"github.com/packetworks/flowsentry/collector/produce"
	"github.com/packetworks/flowsentry/schemas/inventory"
	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/packetworks/flowsentry/schemas/topics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
)

var protected = []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("fd00:1::/48")}

func isProtected(a netip.Addr) bool {
	for _, p := range protected {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// startKafkaCollector runs an in-process collector producing to a new
// unique topic of the real broker.
func startKafkaCollector(t *testing.T) (netip.AddrPort, string, []string) {
	t.Helper()
	brokers := itest.KafkaBrokers(t)
	topic := itest.Topic(t, brokers, "it-flows", 8)
	cfg := config.Default()
	cfg.CollectorID = "it"
	cfg.Listeners = []config.Listener{{Protocol: "netflow", Addr: "127.0.0.1:0", Network: "udp", Sockets: 1}}
	cfg.Templates.StateFile = filepath.Join(t.TempDir(), "state.json")
	cfg.Kafka.Brokers = brokers
	cfg.Produce.Topic = topic
	cfg.Produce.Linger = 50 * time.Millisecond
	cfg.Produce.Compression = "zstd"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	inv, err := inventory.New(inventory.File{Protected: []string{"fd00:1::/48"},
		Customers: []inventory.Customer{{ID: "cust-a", Prefixes: []string{"10.1.0.0/16"}}}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := produce.NewKafkaWriter(cfg.Kafka, produce.KafkaConfig{Topic: topic, Compression: cfg.Produce.Compression,
		BatchBytes: cfg.Produce.BatchBytes, WriteTimeout: cfg.Produce.WriteTimeout})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := New(ctx, cfg, inv, w, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("collector: %v", err)
		}
	})
	return svc.Addrs()[0], topic, brokers
}

// readFlows reads every partition of topic until want flows arrived or
// the deadline passes, checking the partitioning rule on the way.
func readFlows(t *testing.T, brokers []string, topic string, want int) []*pb.Flow {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	var flows []*pb.Flow
	got := make(chan struct{}, 1)
	var wg sync.WaitGroup
	for p := 0; p < 8; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					return
				}
				b := &pb.FlowBatch{}
				if err := proto.Unmarshal(m.Value, b); err != nil {
					t.Errorf("partition %d: %v", p, err)
					return
				}
				if len(b.Flows) == 0 || string(m.Key) != b.Flows[0].Subnet || b.Collector != "it" {
					t.Errorf("partition %d: key %q, collector %q, %d flows", p, m.Key, b.Collector, len(b.Flows))
				}
				for _, f := range b.Flows {
					if q := topics.Partition([]byte(f.Subnet), 8); q != p {
						t.Errorf("flow of %s in partition %d, hashes to %d", f.Subnet, p, q)
					}
				}
				mu.Lock()
				flows = append(flows, b.Flows...)
				if len(flows) >= want {
					select {
					case got <- struct{}{}:
					default:
					}
				}
				mu.Unlock()
			}
		}(p)
	}
	select {
	case <-got:
		time.Sleep(300 * time.Millisecond) // catch duplicates, if any
	case <-ctx.Done():
	}
	cancel()
	wg.Wait()
	return flows
}

func addrOf(b []byte) netip.Addr { a, _ := netip.AddrFromSlice(b); return a }

func TestSoftflowdToKafka(t *testing.T) {
	if _, err := exec.LookPath("softflowd"); err != nil {
		if itest.InCI() {
			t.Fatal("softflowd is not installed (apt-get install softflowd)")
		}
		t.Skip("softflowd is not installed")
	}
	cases := []struct {
		name string
		args []string
		v6   bool
		// v9 headers carry whole seconds only: times can be up to 1 s early.
		tolerance time.Duration
	}{
		{"netflow-v5", []string{"-v", "5"}, false, 10 * time.Millisecond},
		{"netflow-v9", []string{"-v", "9"}, true, 1010 * time.Millisecond},
		{"ipfix-milli", []string{"-v", "10", "-A", "milli"}, true, 10 * time.Millisecond},
		{"ipfix-sec", []string{"-v", "10", "-A", "sec"}, true, 1010 * time.Millisecond},
		{"ipfix-micro", []string{"-v", "10", "-A", "micro"}, true, 10 * time.Millisecond},
		{"ipfix-default", []string{"-v", "10"}, true, 10 * time.Millisecond},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			addr, topic, brokers := startKafkaCollector(t)
			dir := t.TempDir()
			pcap := filepath.Join(dir, "mix.pcap")
			truthMap := writePcap(t, pcap, time.Now().Add(-5*time.Second).Truncate(time.Millisecond))
			want := map[truthKey]*truth{}
			for k, v := range truthMap {
				if c.v6 || k.src.Is4() {
					want[k] = v
				}
			}
			args := append([]string{"-r", pcap, "-n", addr.String(), "-a", "-p", filepath.Join(dir, "pid")}, c.args...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, "softflowd", args...).CombinedOutput()
			if err != nil {
				t.Fatalf("softflowd %v: %v\n%s", args, err, out)
			}
			flows := readFlows(t, brokers, topic, len(want))
			if len(flows) != len(want) {
				t.Fatalf("got %d flows from Kafka, want %d (softflowd said:\n%s)", len(flows), len(want), out)
			}
			seen := map[truthKey]bool{}
			for _, f := range flows {
				k := truthKey{addrOf(f.SrcAddr), addrOf(f.DstAddr), uint16(f.SrcPort), uint16(f.DstPort), uint8(f.Proto)}
				if k.proto == 1 || k.proto == 58 {
					k.srcPort, k.dstPort = 0, 0 // v5 carries type/code in the destination port
				}
				w := want[k]
				if w == nil || seen[k] {
					t.Errorf("unexpected or duplicate flow %v", k)
					continue
				}
				seen[k] = true
				if f.Bytes != w.bytes || f.Packets != w.packets {
					t.Errorf("%v: %d bytes %d packets, want %d %d", k, f.Bytes, f.Packets, w.bytes, w.packets)
				}
				if uint8(f.TcpFlags) != w.flags {
					t.Errorf("%v: tcp flags %#x, want %#x", k, f.TcpFlags, w.flags)
				}
				if k.proto == 1 && f.IcmpType != uint32(w.icmpType) {
					t.Errorf("%v: icmp type %d, want %d", k, f.IcmpType, w.icmpType)
				}
				// Direction and subnet: the protected side decides.
				wantDir, side := pb.Direction_DIRECTION_INBOUND, k.dst
				if !isProtected(k.dst) {
					wantDir, side = pb.Direction_DIRECTION_OUTBOUND, k.src
				}
				if f.Direction != wantDir || !netip.MustParsePrefix(f.Subnet).Contains(side) {
					t.Errorf("%v: direction %v subnet %s", k, f.Direction, f.Subnet)
				}
				if side.Is4() != (f.Customer == "cust-a") {
					t.Errorf("%v: customer %q", k, f.Customer)
				}
				// softflowd flows are bidirectional: each direction's record
				// carries the whole flow's first and last time.
				first, last := w.first, w.last
				if r := want[truthKey{k.dst, k.src, k.dstPort, k.srcPort, k.proto}]; r != nil {
					first, last = minTime(first, r.first), maxTime(last, r.last)
				}
				ds := time.Duration(int64(f.TimeFlowStartNs) - first.UnixNano()).Abs()
				de := time.Duration(int64(f.TimeFlowEndNs) - last.UnixNano()).Abs()
				if ds > c.tolerance || de > c.tolerance {
					t.Errorf("%v: start/end off by %v/%v (tolerance %v)", k, ds, de, c.tolerance)
				}
				if c.name != "netflow-v5" && (f.SamplingRate != 1 || !f.SamplingApplied) {
					t.Errorf("%v: sampling rate %d applied %v, softflowd announces 1", k, f.SamplingRate, f.SamplingApplied)
				}
			}
		})
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sFlow: crafted datagrams (flowgen) through the real broker, sampling
// applied.
func TestSFlowToKafka(t *testing.T) {
	addr, topic, brokers := startKafkaCollector(t)
	var fl []flowgen.Flow
	for i := 0; i < 40; i++ {
		src := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
		dst := netip.AddrFrom4([4]byte{10, 1, byte(i), 1})
		if i%4 == 3 {
			src = netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i))
			dst = netip.MustParseAddr(fmt.Sprintf("fd00:1:0:%x::1", i))
		}
		fl = append(fl, flowgen.Flow{Src: src, Dst: dst, SrcPort: uint16(1000 + i), DstPort: 80, Proto: 6, TCPFlags: 0x02, Bytes: 1000, Packets: 1, InIf: 3})
	}
	sendTo(t, addr, flowgen.SFlow(flowgen.SFlowHeader{Agent: netip.MustParseAddr("127.0.0.1"), SamplingRate: 100}, fl[:20]),
		flowgen.SFlow(flowgen.SFlowHeader{Agent: netip.MustParseAddr("127.0.0.1"), SamplingRate: 100, Expanded: true, Seq: 1}, fl[20:]))
	flows := readFlows(t, brokers, topic, len(fl))
	if len(flows) != len(fl) {
		t.Fatalf("got %d flows, want %d", len(flows), len(fl))
	}
	for _, f := range flows {
		if f.Type != pb.Flow_SFLOW_5 || f.Bytes != 100000 || f.Packets != 100 || !f.SamplingApplied || f.TcpFlags != 2 ||
			f.Direction != pb.Direction_DIRECTION_INBOUND || f.DstPort != 80 {
			t.Errorf("flow %v -> %v: %+v", addrOf(f.SrcAddr), addrOf(f.DstAddr), f)
		}
	}
}
