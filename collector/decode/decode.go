// Package decode turns NetFlow v5, NetFlow v9, IPFIX and sFlow v5 datagrams
// into pb.Flow records.
//
// goflow2's decoders parse the datagrams (headers, sets, templates, sFlow
// samples). For NetFlow v9 and IPFIX data sets we go one step further than
// goflow2: we hand goflow2 a template system that never answers, so it
// returns every data set as raw bytes, and we decode those bytes with our
// own compiled templates straight into a reused pb.Flow. That skips
// goflow2's per-field allocations (a []DataField and an interface{} per
// value), which is where its own collector spends most of its time, and
// lets us read every time form (IE 21/22 with IE 160, 150-159, 161/162)
// that goflow2's producer only partly handles.
package decode

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"
	"github.com/netsampler/goflow2/v2/decoders/sflow"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// Handler receives each decoded flow. The flow and its byte slices are
// only valid during the call (they are reused for the next flow). Sampling
// is not applied yet: SamplingRate is set, SamplingApplied is false.
type Handler interface {
	Flow(f *pb.Flow)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(f *pb.Flow)

// Flow calls fn.
func (fn HandlerFunc) Flow(f *pb.Flow) { fn(f) }

// Error is a decode error with the reason it was counted under.
type Error struct {
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Decoder decodes datagrams. It is not safe for concurrent use: use one per
// socket goroutine, all sharing one State.
type Decoder struct {
	st *State

	flow              pb.Flow
	src, dst, nh, smp [16]byte
	srcMac, dstMac    uint64
	buf               bytes.Buffer
	nf9               netflow.NFv9Packet
	ipfix             netflow.IPFIXPacket
	v5                netflowlegacy.PacketNetFlowV5
	sf                sflow.Packet
	h                 Handler
	exp               *exporter
	samplerAddr       []byte
	received          int64
	flows             int
}

// NewDecoder returns a decoder using the shared state st.
func NewDecoder(st *State) *Decoder { return &Decoder{st: st} }

// header is what data records need from their datagram's header; kept
// with held data sets so that they decode later exactly as they would have.
type header struct {
	version  uint16
	domain   uint32
	exportMs int64  // export time, unix milliseconds
	uptime   uint32 // v9 sysUptime at export, ms
	seq      uint32
	received int64 // unix ns
}

// Decode decodes one datagram from the exporter at src, received at now,
// and calls h for every flow. It returns the number of flows. An error is
// counted in the metrics already; flows decoded before it were delivered.
func (d *Decoder) Decode(pkt []byte, src netip.Addr, now time.Time, h Handler) (n int, err error) {
	src = src.Unmap()
	d.h, d.flows, d.received = h, 0, now.UnixNano()
	d.exp = d.st.exporter(src)
	if src.Is4() {
		a := src.As4()
		d.samplerAddr = append(d.smp[:0], a[:]...)
	} else {
		a := src.As16()
		d.samplerAddr = append(d.smp[:0], a[:]...)
	}
	// goflow2 is third-party code reading attacker-controlled bytes: a
	// panic there must cost one datagram, not the collector.
	defer func() {
		if r := recover(); r != nil {
			n, err = d.flows, d.fail(ReasonPanic, fmt.Errorf("decoder panic: %v", r))
		}
	}()
	if len(pkt) < 4 {
		d.exp.m.unknown.Inc()
		return 0, d.fail(ReasonShort, fmt.Errorf("datagram of %d bytes", len(pkt)))
	}
	switch v := binary.BigEndian.Uint16(pkt); v {
	case 5:
		d.exp.m.v5.Inc()
		err = d.decodeV5(pkt)
	case 9, 10:
		if v == 9 {
			d.exp.m.v9.Inc()
		} else {
			d.exp.m.ipfix.Inc()
		}
		err = d.decodeNetFlow(pkt)
	case 0:
		if binary.BigEndian.Uint32(pkt) == 5 {
			d.exp.m.sflow.Inc()
			err = d.decodeSFlow(pkt)
			break
		}
		fallthrough
	default:
		d.exp.m.unknown.Inc()
		err = d.fail(ReasonVersion, fmt.Errorf("unknown version %d", v))
	}
	d.exp.m.flows.Add(float64(d.flows))
	return d.flows, err
}

func (d *Decoder) fail(reason string, err error) error {
	d.exp.m.errs[reason].Inc()
	return &Error{Reason: reason, Err: err}
}

// errNoTemplates makes goflow2 hand back every data set as raw bytes.
type noTemplates struct{}

func (noTemplates) RemoveTemplate(uint16, uint32, uint16) (interface{}, error) {
	return nil, netflow.ErrorTemplateNotFound
}
func (noTemplates) GetTemplate(uint16, uint32, uint16) (interface{}, error) {
	return nil, netflow.ErrorTemplateNotFound
}
func (noTemplates) AddTemplate(uint16, uint32, uint16, interface{}) error { return nil }
func (noTemplates) GetTemplates() netflow.FlowBaseTemplateSet             { return nil }

func (d *Decoder) decodeNetFlow(pkt []byte) error {
	if err := templatesFit(pkt); err != nil {
		return d.fail(ReasonTemplate, err)
	}
	if binary.BigEndian.Uint16(pkt) == 9 && len(pkt) >= 20 {
		// goflow2 reads at most "count" sets, but exporters disagree on
		// what count counts (RFC 3954: records; softflowd: neither) and the
		// last sets were lost. Give it the number of sets actually there,
		// and put the exporter's value back afterwards.
		orig := binary.BigEndian.Uint16(pkt[2:])
		binary.BigEndian.PutUint16(pkt[2:], v9Sets(pkt))
		defer binary.BigEndian.PutUint16(pkt[2:], orig)
	}
	d.buf = *bytes.NewBuffer(pkt)
	d.nf9.FlowSets, d.ipfix.FlowSets = nil, nil
	err := netflow.DecodeMessageVersion(&d.buf, noTemplates{}, &d.nf9, &d.ipfix)
	var hdr header
	var sets []interface{}
	if binary.BigEndian.Uint16(pkt) == 9 {
		hdr = header{version: 9, domain: d.nf9.SourceId, exportMs: int64(d.nf9.UnixSeconds) * 1000,
			uptime: d.nf9.SystemUptime, seq: d.nf9.SequenceNumber, received: d.received}
		sets = d.nf9.FlowSets
	} else {
		hdr = header{version: 10, domain: d.ipfix.ObservationDomainId, exportMs: int64(d.ipfix.ExportTime) * 1000,
			seq: d.ipfix.SequenceNumber, received: d.received}
		sets = d.ipfix.FlowSets
	}
	var ferr error
	if err != nil && !errors.Is(err, netflow.ErrorTemplateNotFound) {
		// Sets decoded before the bad one are still good: keep them.
		ferr = d.fail(ReasonMalformed, err)
	}
	for _, s := range sets {
		var serr error
		switch s := s.(type) {
		case netflow.TemplateFlowSet:
			for _, r := range s.Records {
				serr = errors.Join(serr, d.addTemplate(&hdr, &template{ID: r.TemplateId, Fields: fieldsOf(r.Fields, false)}))
			}
		case netflow.NFv9OptionsTemplateFlowSet:
			for _, r := range s.Records {
				t := &template{ID: r.TemplateId, Options: true, Scopes: len(r.Scopes),
					Fields: append(fieldsOf(r.Scopes, false), fieldsOf(r.Options, false)...)}
				serr = errors.Join(serr, d.addTemplate(&hdr, t))
			}
		case netflow.IPFIXOptionsTemplateFlowSet:
			for _, r := range s.Records {
				t := &template{ID: r.TemplateId, Options: true, Scopes: len(r.Scopes),
					Fields: append(fieldsOf(r.Scopes, true), fieldsOf(r.Options, true)...)}
				serr = errors.Join(serr, d.addTemplate(&hdr, t))
			}
		case netflow.RawFlowSet:
			serr = d.dataSet(&hdr, s.Id, s.Records, true)
		}
		if serr != nil && ferr == nil {
			ferr = serr
		}
	}
	return ferr
}

// addTemplate stores (or, with no fields, withdraws) a template and
// decodes data sets that were waiting for it.
func (d *Decoder) addTemplate(hdr *header, t *template) error {
	k := domainKey{hdr.version, hdr.domain}
	e := d.exp
	if len(t.Fields) == 0 {
		// IPFIX template withdrawal (RFC 7011 8.1); v9 never sends it.
		e.mu.Lock()
		dm := e.domainLocked(k)
		if t.ID == 2 || t.ID == 3 {
			for id, old := range dm.templates {
				if old.Options == (t.ID == 3) {
					delete(dm.templates, id)
				}
			}
		} else {
			delete(dm.templates, t.ID)
		}
		e.mu.Unlock()
		d.st.dirty.Store(true)
		return nil
	}
	if err := compile(t); err != nil {
		return d.fail(ReasonTemplate, fmt.Errorf("exporter %s domain %d template %d: %w", e.addr, hdr.domain, t.ID, err))
	}
	t.LastSeen = hdr.received
	e.mu.Lock()
	dm := e.domainLocked(k)
	dm.lastSeen = hdr.received
	if old := dm.templates[t.ID]; old == nil || !sameFields(old, t) {
		d.st.dirty.Store(true)
	} else if hdr.received-old.LastSeen > int64(time.Minute) {
		d.st.dirty.Store(true) // refresh LastSeen on disk now and then
	}
	dm.templates[t.ID] = t
	var ready []pendingSet
	if len(dm.pending) > 0 {
		kept := dm.pending[:0]
		for _, p := range dm.pending {
			if p.templateID == t.ID {
				ready = append(ready, p)
			} else {
				kept = append(kept, p)
			}
		}
		dm.pending = kept
	}
	e.mu.Unlock()
	var err error
	for _, p := range ready {
		err = errors.Join(err, d.dataSet(&p.hdr, p.templateID, p.data, false))
	}
	return err
}

func sameFields(a, b *template) bool {
	if a.Scopes != b.Scopes || a.Options != b.Options || len(a.Fields) != len(b.Fields) {
		return false
	}
	for i := range a.Fields {
		if a.Fields[i] != b.Fields[i] {
			return false
		}
	}
	return true
}

// snapshot is what a data set needs from its domain, copied under the lock.
type snapshot struct {
	t         *template
	rate      uint64
	sysInitMs uint64
	domain    *domain
}

func (d *Decoder) dataSet(hdr *header, id uint16, data []byte, mayHold bool) error {
	e := d.exp
	k := domainKey{hdr.version, hdr.domain}
	var snap snapshot
	e.mu.RLock()
	if dm := e.domains[k]; dm != nil {
		snap = snapshot{t: dm.templates[id], rate: dm.rate, sysInitMs: dm.sysInitMs, domain: dm}
	}
	e.mu.RUnlock()
	if snap.t == nil {
		if !mayHold {
			return nil
		}
		e.m.misses.Inc()
		e.mu.Lock()
		dm := e.domainLocked(k)
		if len(dm.pending) >= d.st.cfg.PendingSets {
			e.mu.Unlock()
			return d.fail(ReasonPendingDrop, fmt.Errorf("domain %d: no template %d and %d sets already held", hdr.domain, id, len(dm.pending)))
		}
		// Copy: the datagram buffer is reused for the next read.
		dm.pending = append(dm.pending, pendingSet{templateID: id, data: append([]byte(nil), data...), hdr: *hdr})
		e.mu.Unlock()
		return nil
	}
	if snap.t.Options {
		return d.optionsSet(hdr, k, snap.t, data)
	}
	return d.records(hdr, &snap, data)
}

// bytesBuffer wraps pkt without copying.
func bytesBuffer(pkt []byte) *bytes.Buffer { return bytes.NewBuffer(pkt) }

// v9Sets counts the flow sets of a v9 datagram by walking their lengths.
func v9Sets(pkt []byte) uint16 {
	n := 0
	for p := 20; p+4 <= len(pkt) && n < 0xffff; n++ {
		l := int(binary.BigEndian.Uint16(pkt[p+2:]))
		if l < 4 {
			return uint16(n + 1) // let goflow2 report the bad set
		}
		p += l
	}
	return uint16(n)
}
