package flowgen

import (
	"time"
)

// TimeMode selects how flow start/end times are encoded in v9/IPFIX records.
type TimeMode int

const (
	// TimeUptime: IE 21/22, milliseconds of system uptime. v9 resolves them
	// with the header; IPFIX needs systemInitTimeMilliseconds (IE 160),
	// which the encoder sends in an options record.
	TimeUptime      TimeMode = iota
	TimeSeconds              // IE 150/151
	TimeMillis               // IE 152/153
	TimeMicros               // IE 154/155 (NTP format, RFC 7011)
	TimeNanos                // IE 156/157 (NTP format)
	TimeDeltaMicros          // IE 158/159 (IPFIX only; microseconds before export time)
)

// Template IDs the encoder uses.
const (
	TemplateV4      = 256
	TemplateV6      = 257
	TemplateOptions = 258
)

type field struct{ typ, length uint16 }

func (e *Encoder) timeFields() []field {
	switch e.Time {
	case TimeSeconds:
		return []field{{150, 4}, {151, 4}}
	case TimeMillis:
		return []field{{152, 8}, {153, 8}}
	case TimeMicros:
		return []field{{154, 8}, {155, 8}}
	case TimeNanos:
		return []field{{156, 8}, {157, 8}}
	case TimeDeltaMicros:
		return []field{{158, 4}, {159, 4}}
	default:
		return []field{{22, 4}, {21, 4}} // FIRST_SWITCHED, LAST_SWITCHED
	}
}

func (e *Encoder) v4Fields() []field {
	f := []field{{8, 4}, {12, 4}, {15, 4}, {7, 2}, {11, 2}, {4, 1}, {6, 1}, {5, 1},
		{1, 8}, {2, 8}, {10, 4}, {14, 4}, {16, 4}, {17, 4}, {9, 1}, {13, 1}, {32, 2}}
	return append(f, e.timeFields()...)
}

func (e *Encoder) v6Fields() []field {
	f := []field{{27, 16}, {28, 16}, {62, 16}, {7, 2}, {11, 2}, {4, 1}, {6, 1}, {5, 1},
		{1, 8}, {2, 8}, {10, 4}, {14, 4}, {16, 4}, {17, 4}, {29, 1}, {30, 1}, {139, 2}}
	return append(f, e.timeFields()...)
}

// Encoder encodes NetFlow v9 (Version 9) or IPFIX (Version 10) datagrams
// for one exporter and observation domain. It is not safe for concurrent use.
type Encoder struct {
	Version int    // 9 or 10
	Domain  uint32 // v9 source id / IPFIX observation domain
	Time    TimeMode
	// Boot is the exporter's boot time (uptime base for v9 headers and
	// IE 21/22; sent as IE 160 for IPFIX).
	Boot time.Time
	// SamplingRate > 0 makes Templates() also send an options template and
	// record announcing 1-in-N sampling: IE 34 for v9 (plus 48/49/50
	// sampler fields when SamplerID > 0), IE 305/306 for IPFIX.
	SamplingRate uint32
	SamplerID    uint8
	seq          uint32
}

func (e *Encoder) header(b []byte, export time.Time) []byte {
	if e.Version == 9 {
		b = put16(b, 9)
		b = put16(b, 0) // count, patched by finish
		b = put32(b, uptimeMs(e.Boot, export))
		b = put32(b, uint32(export.Unix()))
		b = put32(b, e.seq)
		return put32(b, e.Domain)
	}
	b = put16(b, 10)
	b = put16(b, 0) // length, patched by finish
	b = put32(b, uint32(export.Unix()))
	b = put32(b, e.seq)
	return put32(b, e.Domain)
}

// finish patches the header: v9 counts every record (templates included)
// and its sequence counts datagrams; IPFIX carries the length and its
// sequence counts data records.
func (e *Encoder) finish(b []byte, records, dataRecords int) []byte {
	if e.Version == 9 {
		be.PutUint16(b[2:], uint16(records))
		e.seq++
	} else {
		be.PutUint16(b[2:], uint16(len(b)))
		e.seq += uint32(dataRecords)
	}
	return b
}

// set appends a set header and returns the offset of its length field.
func set(b []byte, id uint16) ([]byte, int) {
	b = put16(b, id)
	at := len(b)
	return put16(b, 0), at
}

func endSet(b []byte, at int) []byte {
	for (len(b)-at+2)%4 != 0 {
		b = append(b, 0) // padding to 4 bytes, as exporters do
	}
	be.PutUint16(b[at:], uint16(len(b)-at+2))
	return b
}

func (e *Encoder) samplerOptionFields() (scope []field, opts []field) {
	if e.Version == 9 {
		scope = []field{{1, 4}} // scope: system
		if e.SamplerID > 0 {
			return scope, []field{{48, 1}, {49, 1}, {50, 4}}
		}
		return scope, []field{{34, 4}, {35, 1}}
	}
	scope = []field{{149, 4}} // observationDomainId
	if e.SamplingRate > 0 {
		opts = []field{{305, 4}, {306, 4}}
	}
	if e.Time == TimeUptime {
		opts = append(opts, field{160, 8})
	}
	return scope, opts
}

func (e *Encoder) needsOptions() bool {
	return e.SamplingRate > 0 || (e.Version == 10 && e.Time == TimeUptime)
}

// Templates returns a datagram with the data templates and, when needed,
// the options template and its record (sampling, system init time).
func (e *Encoder) Templates(export time.Time) []byte {
	b, n := e.templates(e.header(make([]byte, 0, 256), export))
	return e.finish(b, n, 0)
}

func (e *Encoder) templates(b []byte) ([]byte, int) {
	count := 2
	tid := uint16(0)
	if e.Version == 10 {
		tid = 2
	}
	b, at := set(b, tid)
	for _, t := range []struct {
		id     uint16
		fields []field
	}{{TemplateV4, e.v4Fields()}, {TemplateV6, e.v6Fields()}} {
		b = put16(b, t.id)
		b = put16(b, uint16(len(t.fields)))
		for _, f := range t.fields {
			b = put16(b, f.typ)
			b = put16(b, f.length)
		}
	}
	b = endSet(b, at)
	if !e.needsOptions() {
		return b, count
	}
	scope, opts := e.samplerOptionFields()
	if e.Version == 9 {
		b, at = set(b, 1)
		b = put16(b, TemplateOptions)
		b = put16(b, uint16(4*len(scope)))
		b = put16(b, uint16(4*len(opts)))
	} else {
		b, at = set(b, 3)
		b = put16(b, TemplateOptions)
		b = put16(b, uint16(len(scope)+len(opts)))
		b = put16(b, uint16(len(scope)))
	}
	for _, f := range append(scope, opts...) {
		b = put16(b, f.typ)
		b = put16(b, f.length)
	}
	b = endSet(b, at)
	b, at = set(b, TemplateOptions)
	if e.Version == 9 {
		b = put32(b, e.Domain)
		if e.SamplerID > 0 {
			b = append(b, e.SamplerID, 2)
			b = put32(b, e.SamplingRate)
		} else {
			b = put32(b, e.SamplingRate)
			b = append(b, 1) // deterministic
		}
	} else {
		b = put32(b, e.Domain)
		if rate := e.SamplingRate; rate > 0 {
			b = put32(b, 1)      // samplingPacketInterval: 1 packet taken...
			b = put32(b, rate-1) // ...then rate-1 skipped
		}
		if e.Time == TimeUptime {
			b = put64(b, uint64(e.Boot.UnixMilli()))
		}
	}
	b = endSet(b, at)
	return b, count + 2
}

// ntp encodes t as a 64-bit NTP timestamp (seconds since 1900 + fraction).
func ntp(t time.Time, micros bool) uint64 {
	secs := uint64(t.Unix() + 2208988800)
	ns := uint64(t.Nanosecond())
	if micros {
		ns = ns / 1000 * 1000
	}
	frac := (ns << 32) / 1e9
	return secs<<32 | frac
}

func (e *Encoder) appendTimes(b []byte, export time.Time, f Flow) []byte {
	switch e.Time {
	case TimeSeconds:
		return put32(put32(b, uint32(f.Start.Unix())), uint32(f.End.Unix()))
	case TimeMillis:
		return put64(put64(b, uint64(f.Start.UnixMilli())), uint64(f.End.UnixMilli()))
	case TimeMicros:
		return put64(put64(b, ntp(f.Start, true)), ntp(f.End, true))
	case TimeNanos:
		return put64(put64(b, ntp(f.Start, false)), ntp(f.End, false))
	case TimeDeltaMicros:
		return put32(put32(b, uint32(export.Sub(f.Start).Microseconds())), uint32(export.Sub(f.End).Microseconds()))
	default:
		return put32(put32(b, uptimeMs(e.Boot, f.Start)), uptimeMs(e.Boot, f.End))
	}
}

// Data returns one datagram with data sets for flows (IPv4 flows in one
// set, IPv6 in another), without templates.
func (e *Encoder) Data(export time.Time, flows []Flow) []byte {
	b := e.data(e.header(make([]byte, 0, 64+len(flows)*120), export), export, flows)
	return e.finish(b, len(flows), len(flows))
}

// Datagram is Templates and Data in one datagram (templates first).
func (e *Encoder) Datagram(export time.Time, flows []Flow) []byte {
	b, n := e.templates(e.header(make([]byte, 0, 320+len(flows)*120), export))
	b = e.data(b, export, flows)
	return e.finish(b, n+len(flows), len(flows))
}

func (e *Encoder) data(b []byte, export time.Time, flows []Flow) []byte {
	for _, v6 := range []bool{false, true} {
		id := uint16(TemplateV4)
		if v6 {
			id = TemplateV6
		}
		at := -1
		for _, f := range flows {
			if f.Is6() != v6 {
				continue
			}
			if at < 0 {
				b, at = set(b, id)
			}
			if v6 {
				b = append(b, addr16(f.Src)...)
				b = append(b, addr16(f.Dst)...)
				b = append(b, addr16(f.NextHop)...)
			} else {
				b = append(b, addr4(f.Src)...)
				b = append(b, addr4(f.Dst)...)
				b = append(b, addr4(f.NextHop)...)
			}
			b = put16(b, f.SrcPort)
			b = put16(b, f.DstPort)
			b = append(b, f.Proto, f.TCPFlags, f.Tos)
			b = put64(b, f.Bytes)
			b = put64(b, f.Packets)
			b = put32(b, f.InIf)
			b = put32(b, f.OutIf)
			b = put32(b, f.SrcAS)
			b = put32(b, f.DstAS)
			b = append(b, f.SrcMask, f.DstMask)
			b = put16(b, uint16(f.ICMPType)<<8|uint16(f.ICMPCode))
			b = e.appendTimes(b, export, f)
		}
		if at >= 0 {
			b = endSet(b, at)
		}
	}
	return b
}
