package service

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/collector/decode"
	"github.com/packetworks/flowsentry/collector/flowgen"
	"github.com/packetworks/flowsentry/collector/normalise"
	"github.com/packetworks/flowsentry/collector/produce"
	"github.com/packetworks/flowsentry/schemas/inventory"
)

type discard struct{}

func (discard) Write(context.Context, []*produce.Message) error { return nil }
func (discard) Partitions(context.Context) (int, error)         { return 8, nil }
func (discard) Close() error                                    { return nil }

// BenchmarkPipeline: decode + normalise + batch + encode of NetFlow v9
// and sFlow datagrams, per flow (b.N counts flows), as one socket
// goroutine runs it (Kafka writes discarded).
func BenchmarkPipeline(b *testing.B) {
	now := time.Now()
	var fl []flowgen.Flow
	for i := 0; i < 24; i++ {
		fl = append(fl, flowgen.Flow{Src: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), Dst: netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}),
			SrcPort: uint16(1024 + i), DstPort: 443, Proto: 6, TCPFlags: 0x18, Bytes: 15000, Packets: 10, Start: now.Add(-time.Second), End: now})
	}
	v9 := &flowgen.Encoder{Version: 9, Boot: now.Add(-time.Hour), SamplingRate: 100}
	cases := []struct {
		name       string
		setup, pkt []byte
		per        int
	}{
		{"netflow9", v9.Templates(now), v9.Data(now, fl), 24},
		{"sflow", nil, flowgen.SFlow(flowgen.SFlowHeader{Agent: netip.MustParseAddr("127.0.0.1"), SamplingRate: 1000}, fl[:8]), 8},
	}
	inv, _ := inventory.New(inventory.File{Protected: []string{"203.0.113.0/24"}})
	src := netip.MustParseAddr("192.0.2.1")
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			p := produce.New(produce.Config{Linger: time.Hour}, discard{}, produce.NewMetrics(nil), slog.New(slog.NewTextHandler(io.Discard, nil)))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go p.Run(ctx, time.Second)
			w := &worker{dec: decode.NewDecoder(decode.NewState(decode.Config{}, decode.NewMetrics(nil))), batch: p.NewBatcher()}
			w.norm = normalise.New(inv, false, normalise.NewMetrics(nil), w.batch)
			if c.setup != nil {
				w.Datagram(c.setup, src, now)
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i += c.per {
				w.Datagram(c.pkt, src, now)
			}
		})
	}
}
