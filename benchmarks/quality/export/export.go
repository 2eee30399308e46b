// Package export sends scenario records to a collector as IPFIX datagrams
// in event-time order, time-compressed: one socket and one observation
// domain per router of each scenario (carrying its sampling rate), like the
// demo's history replay. IPFIX carries millisecond timestamps, so the
// records keep their event times however fast they are sent (sFlow has
// none: the collector stamps it on receipt). Fragment records go through a
// template of this package's own (flowgen has no fragment fields).
package export

import (
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/packetworks/flowsentry/benchmarks/scenario"
	"github.com/packetworks/flowsentry/collector/flowgen"
)

// Records per datagram stay below a 1500-byte MTU, as real exporters do.
const (
	maxV4PerDatagram   = 18
	maxV6PerDatagram   = 10
	maxFragPerDatagram = 30
	templateEvery      = 10 * time.Second
)

// Domain encodes the records of one router: flowgen's IPFIX encoder for
// ordinary records, and a fragment template in the next domain (Domain+1
// is reserved for it: callers space domains by two).
type Domain struct {
	enc      flowgen.Encoder
	frag     fragEncoder
	lastTmpl time.Time
	v4, v6   []flowgen.Flow
	fr       []scenario.Record
}

// NewDomain returns the encoder of observation domain id for a router
// sampling 1:sampling.
func NewDomain(id, sampling uint32) *Domain {
	return &Domain{enc: flowgen.Encoder{Version: 10, Domain: id, Time: flowgen.TimeMillis, SamplingRate: sampling},
		frag: fragEncoder{domain: id + 1, sampling: sampling}}
}

// Datagrams encodes recs (all of this domain) exported at now; templates
// and sampling options are resent every 10 s of now.
func (d *Domain) Datagrams(now time.Time, recs []scenario.Record, out [][]byte) [][]byte {
	if d.lastTmpl.IsZero() || now.Sub(d.lastTmpl) >= templateEvery || now.Before(d.lastTmpl) {
		out = append(out, d.enc.Templates(now), d.frag.templates(now))
		d.lastTmpl = now
	}
	d.v4, d.v6, d.fr = d.v4[:0], d.v6[:0], d.fr[:0]
	for i := range recs {
		switch {
		case recs[i].FragmentOffset > 0:
			d.fr = append(d.fr, recs[i])
		case recs[i].Flow.Is6():
			d.v6 = append(d.v6, recs[i].Flow)
		default:
			d.v4 = append(d.v4, recs[i].Flow)
		}
	}
	for _, part := range []struct {
		fl []flowgen.Flow
		n  int
	}{{d.v4, maxV4PerDatagram}, {d.v6, maxV6PerDatagram}} {
		for fl := part.fl; len(fl) > 0; {
			n := min(len(fl), part.n)
			out = append(out, d.enc.Data(now, fl[:n]))
			fl = fl[n:]
		}
	}
	for fr := d.fr; len(fr) > 0; {
		n := min(len(fr), maxFragPerDatagram)
		out = append(out, d.frag.data(now, fr[:n]))
		fr = fr[n:]
	}
	return out
}

// fragEncoder writes IPv4 fragment records: addresses, protocol, counts,
// interfaces, fragmentOffset (IE 88) and millisecond times.
type fragEncoder struct {
	domain, sampling, seq uint32
}

const (
	fragTemplate    = 300
	fragOptTemplate = 301
)

var be = binary.BigEndian

var fragFields = [][2]uint16{{8, 4}, {12, 4}, {4, 1}, {1, 8}, {2, 8}, {10, 4}, {14, 4}, {88, 2}, {152, 8}, {153, 8}}

func (e *fragEncoder) header(export time.Time) []byte {
	b := make([]byte, 16, 1500)
	be.PutUint16(b, 10)
	be.PutUint32(b[4:], uint32(export.Unix()))
	be.PutUint32(b[8:], e.seq)
	be.PutUint32(b[12:], e.domain)
	return b
}

func finish(b []byte) []byte {
	be.PutUint16(b[2:], uint16(len(b)))
	return b
}

// set appends a set of id with body.
func set(b []byte, id uint16, body []byte) []byte {
	b = be.AppendUint16(b, id)
	b = be.AppendUint16(b, uint16(4+len(body)))
	return append(b, body...)
}

func (e *fragEncoder) templates(export time.Time) []byte {
	b := e.header(export)
	var t []byte
	t = be.AppendUint16(t, fragTemplate)
	t = be.AppendUint16(t, uint16(len(fragFields)))
	for _, f := range fragFields {
		t = be.AppendUint16(be.AppendUint16(t, f[0]), f[1])
	}
	b = set(b, 2, t)
	// Options: scope observationDomainId, samplingPacketInterval (305),
	// samplingPacketSpace (306), as flowgen announces sampling.
	var o []byte
	o = be.AppendUint16(o, fragOptTemplate)
	o = be.AppendUint16(o, 3)
	o = be.AppendUint16(o, 1)
	for _, f := range [][2]uint16{{149, 4}, {305, 4}, {306, 4}} {
		o = be.AppendUint16(be.AppendUint16(o, f[0]), f[1])
	}
	b = set(b, 3, o)
	var r []byte
	r = be.AppendUint32(r, e.domain)
	r = be.AppendUint32(r, 1)
	r = be.AppendUint32(r, e.sampling-1)
	b = set(b, fragOptTemplate, r)
	return finish(b)
}

func (e *fragEncoder) data(export time.Time, recs []scenario.Record) []byte {
	b := e.header(export)
	body := make([]byte, 0, len(recs)*51)
	for i := range recs {
		f := &recs[i].Flow
		s, d := f.Src.Unmap().As4(), f.Dst.Unmap().As4()
		body = append(body, s[:]...)
		body = append(body, d[:]...)
		body = append(body, f.Proto)
		body = be.AppendUint64(body, f.Bytes)
		body = be.AppendUint64(body, f.Packets)
		body = be.AppendUint32(body, f.InIf)
		body = be.AppendUint32(body, f.OutIf)
		body = be.AppendUint16(body, recs[i].FragmentOffset)
		body = be.AppendUint64(body, uint64(f.Start.UnixMilli()))
		body = be.AppendUint64(body, uint64(f.End.UnixMilli()))
	}
	e.seq += uint32(len(recs))
	return finish(set(b, fragTemplate, body))
}

// Sender sends datagrams over UDP at no more than Rate records a second.
type Sender struct {
	conn             *net.UDPConn
	rate             float64
	t0               time.Time
	Records          uint64
	Datagrams, Bytes uint64
	Waited           time.Duration
}

// NewSender opens a socket to the collector at addr, paced at rate records
// per second (0: unpaced).
func NewSender(addr string, rate float64) (*Sender, error) {
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("collector address %s: %w", addr, err)
	}
	conn, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		return nil, err
	}
	_ = conn.SetWriteBuffer(4 << 20)
	return &Sender{conn: conn, rate: rate}, nil
}

// Send writes dgs (holding records records) and then waits as long as the
// pace requires.
func (s *Sender) Send(dgs [][]byte, records int) error {
	if s.t0.IsZero() {
		s.t0 = time.Now()
	}
	for _, d := range dgs {
		if _, err := s.conn.Write(d); err != nil {
			return err
		}
		s.Datagrams++
		s.Bytes += uint64(len(d))
	}
	s.Records += uint64(records)
	if s.rate > 0 {
		if ahead := time.Duration(float64(s.Records)/s.rate*float64(time.Second)) - time.Since(s.t0); ahead > time.Millisecond {
			time.Sleep(ahead)
			s.Waited += ahead
		}
	}
	return nil
}

// Close closes the socket.
func (s *Sender) Close() error { return s.conn.Close() }
