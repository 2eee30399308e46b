// Package export turns generated flows into the datagrams routers send
// (NetFlow v9, IPFIX, sFlow v5, MTU-sized, templates repeated) and sends
// them over UDP from the router's own address, for the demo and the
// benchmark harnesses.
package export

import (
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/packetworks/flowsentry/benchmarks/scenario"
	"github.com/packetworks/flowsentry/collector/flowgen"
)

// Datagram sizes stay below a 1500-byte MTU, as real exporters do.
const (
	maxV4PerDatagram    = 18 // v9/IPFIX IPv4 records (~71 bytes each with ms times)
	maxV6PerDatagram    = 10 // IPv6 records (~119 bytes)
	maxSFlowPerDatagram = 8  // sFlow samples (~150 bytes each)
	templateEvery       = 10 * time.Second
)

// Encoder turns flows into datagrams of one protocol for one exporter
// (or one replayed exporter domain).
type Encoder struct {
	protocol string
	v9ipfix  *flowgen.Encoder
	sflow    flowgen.SFlowHeader
	boot     time.Time
	lastTmpl time.Time
}

// NewEncoder returns the encoder of protocol (scenario.NetFlow9, IPFIX or
// SFlow) for the router agent booted at boot.
func NewEncoder(protocol string, agent netip.Addr, domain, sampling uint32, boot time.Time) (*Encoder, error) {
	e := &Encoder{protocol: protocol, boot: boot}
	switch protocol {
	case scenario.NetFlow9:
		// Uptime-based times, as most NetFlow v9 routers send them.
		e.v9ipfix = &flowgen.Encoder{Version: 9, Domain: domain, Time: flowgen.TimeUptime, Boot: boot, SamplingRate: sampling}
	case scenario.IPFIX:
		e.v9ipfix = &flowgen.Encoder{Version: 10, Domain: domain, Time: flowgen.TimeMillis, Boot: boot, SamplingRate: sampling}
	case scenario.SFlow:
		e.sflow = flowgen.SFlowHeader{Agent: agent, SubAgentID: domain, SamplingRate: sampling, Expanded: false}
	default:
		return nil, fmt.Errorf("exporter protocol %q is not netflow9, ipfix or sflow", protocol)
	}
	return e, nil
}

// Datagrams encodes flows (times already set) into datagrams exported at
// now, templates first when they are due.
func (e *Encoder) Datagrams(now time.Time, flows []flowgen.Flow) [][]byte {
	var out [][]byte
	if e.protocol == scenario.SFlow {
		for len(flows) > 0 {
			n := min(len(flows), maxSFlowPerDatagram)
			e.sflow.Seq++
			e.sflow.Uptime = now.Sub(e.boot)
			e.sflow.Counters = e.sflow.Seq%50 == 0
			out = append(out, flowgen.SFlow(e.sflow, flows[:n]))
			flows = flows[n:]
		}
		return out
	}
	if e.lastTmpl.IsZero() || now.Sub(e.lastTmpl) >= templateEvery {
		out = append(out, e.v9ipfix.Templates(now))
		e.lastTmpl = now
	}
	var v4, v6 []flowgen.Flow
	for _, f := range flows {
		if f.Is6() {
			v6 = append(v6, f)
		} else {
			v4 = append(v4, f)
		}
	}
	for _, part := range []struct {
		fl []flowgen.Flow
		n  int
	}{{v4, maxV4PerDatagram}, {v6, maxV6PerDatagram}} {
		for fl := part.fl; len(fl) > 0; {
			n := min(len(fl), part.n)
			out = append(out, e.v9ipfix.Data(now, fl[:n]))
			fl = fl[n:]
		}
	}
	return out
}

// UDPSender sends datagrams from one local source address (the exporter's
// identity as the collector sees it) to one collector port.
type UDPSender struct {
	conn             *net.UDPConn
	to               *net.UDPAddr
	datagrams, bytes atomic.Uint64
}

// NewUDPSender binds src (a loopback address such as 127.0.100.1 works
// without configuration on Linux) and sends to the collector at to.
func NewUDPSender(src netip.Addr, to string) (*UDPSender, error) {
	raddr, err := net.ResolveUDPAddr("udp", to)
	if err != nil {
		return nil, fmt.Errorf("collector address %s: %w", to, err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: src.AsSlice()})
	if err != nil {
		return nil, fmt.Errorf("exporter source %s: %w (use loopback addresses 127.0.0.0/8)", src, err)
	}
	_ = conn.SetWriteBuffer(4 << 20)
	return &UDPSender{conn: conn, to: raddr}, nil
}

// Send sends the datagrams in order.
func (s *UDPSender) Send(dgs [][]byte) error {
	for _, d := range dgs {
		if _, err := s.conn.WriteToUDP(d, s.to); err != nil {
			return err
		}
		s.datagrams.Add(1)
		s.bytes.Add(uint64(len(d)))
	}
	return nil
}

// Datagrams and Bytes count what Send sent.
func (s *UDPSender) Datagrams() uint64 { return s.datagrams.Load() }
func (s *UDPSender) Bytes() uint64     { return s.bytes.Load() }

// Close closes the socket.
func (s *UDPSender) Close() error { return s.conn.Close() }
