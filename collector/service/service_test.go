package service

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/collector/config"
	"github.com/packetworks/flowsentry/collector/flowgen"
	"github.com/packetworks/flowsentry/collector/produce"
	"github.com/packetworks/flowsentry/schemas/inventory"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

type memWriter struct {
	mu    sync.Mutex
	flows []*pb.Flow
}

func (w *memWriter) Write(_ context.Context, msgs []*produce.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range msgs {
		b := &pb.FlowBatch{}
		if err := proto.Unmarshal(m.Value, b); err != nil {
			return err
		}
		w.flows = append(w.flows, b.Flows...)
	}
	return nil
}
func (w *memWriter) Partitions(context.Context) (int, error) { return 8, nil }
func (w *memWriter) Close() error                            { return nil }
func (w *memWriter) count() int                              { w.mu.Lock(); defer w.mu.Unlock(); return len(w.flows) }

func testConfig(t *testing.T) config.Config {
	c := config.Default()
	c.CollectorID = "test"
	c.Listeners = []config.Listener{{Protocol: "netflow", Addr: "127.0.0.1:0", Network: "udp", Sockets: 2}}
	c.Templates.StateFile = filepath.Join(t.TempDir(), "state.json")
	c.Produce.Linger = 20 * time.Millisecond
	return c
}

func testInventory(t *testing.T) *inventory.Inventory {
	inv, err := inventory.New(inventory.File{Protected: []string{"203.0.113.0/24"},
		Customers: []inventory.Customer{{ID: "acme", Prefixes: []string{"203.0.113.0/25"}}}})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func start(t *testing.T, cfg config.Config, w produce.Writer) (*Service, func()) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, cfg, testInventory(t), w, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	return s, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}
}

func sendTo(t *testing.T, to netip.AddrPort, pkts ...[]byte) {
	t.Helper()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, p := range pkts {
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
	}
}

func wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var now = time.Now().Truncate(time.Second)

func flows() []flowgen.Flow {
	return []flowgen.Flow{
		{Src: netip.MustParseAddr("198.51.100.1"), Dst: netip.MustParseAddr("203.0.113.5"), SrcPort: 1234, DstPort: 80, Proto: 6,
			TCPFlags: 2, Bytes: 60, Packets: 1, Start: now.Add(-time.Second), End: now},
		{Src: netip.MustParseAddr("203.0.113.200"), Dst: netip.MustParseAddr("198.51.100.1"), SrcPort: 53, DstPort: 999, Proto: 17,
			Bytes: 100, Packets: 1, Start: now.Add(-time.Second), End: now},
		{Src: netip.MustParseAddr("198.51.100.1"), Dst: netip.MustParseAddr("198.51.100.2"), Proto: 17, Bytes: 1, Packets: 1,
			Start: now, End: now}, // unprotected: dropped
	}
}

// End to end without services: UDP in, tagged and scaled FlowBatches out,
// and templates survive a restart through the state file.
func TestServiceEndToEndAndRestart(t *testing.T) {
	cfg := testConfig(t)
	w := &memWriter{}
	s, stop := start(t, cfg, w)
	enc := &flowgen.Encoder{Version: 9, Boot: now.Add(-time.Hour), SamplingRate: 10}
	sendTo(t, s.Addrs()[0], enc.Datagram(now, flows()))
	wait(t, "2 flows", func() bool { return w.count() == 2 })
	stop()
	// Two senders write the two partitions' batches concurrently: order
	// the flows (inbound first) before looking at them.
	got := byDirection(w.flows)
	if got[0].Subnet != "203.0.113.0/25" || got[0].Customer != "acme" || got[0].Direction != pb.Direction_DIRECTION_INBOUND {
		t.Errorf("flow 0 tags: %q %q %v", got[0].Subnet, got[0].Customer, got[0].Direction)
	}
	if got[1].Subnet != "203.0.113.0/24" || got[1].Direction != pb.Direction_DIRECTION_OUTBOUND {
		t.Errorf("flow 1 tags: %q %v", got[1].Subnet, got[1].Direction)
	}
	if got[0].Bytes != 600 || got[0].SamplingRate != 10 || !got[0].SamplingApplied {
		t.Errorf("flow 0 sampling: %d bytes rate %d", got[0].Bytes, got[0].SamplingRate)
	}

	// Restart with the same state file: data without templates decodes.
	w2 := &memWriter{}
	s2, stop2 := start(t, cfg, w2)
	defer stop2()
	sendTo(t, s2.Addrs()[0], enc.Data(now, flows()))
	wait(t, "2 flows after restart", func() bool { return w2.count() == 2 })
	if got2 := byDirection(w2.flows); got2[0].Bytes != 600 {
		t.Errorf("after restart: sampling rate not restored (%d bytes)", got2[0].Bytes)
	}
}

func byDirection(fl []*pb.Flow) []*pb.Flow {
	fl = slices.Clone(fl)
	slices.SortStableFunc(fl, func(a, b *pb.Flow) int { return int(a.Direction) - int(b.Direction) })
	return fl
}
