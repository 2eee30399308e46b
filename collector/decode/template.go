package decode

import (
	"encoding/binary"
	"fmt"

	"github.com/netsampler/goflow2/v2/decoders/netflow"
)

// op says what the normaliser does with one template field. Templates are
// compiled to a []op once when they arrive, so that decoding a data record
// is a single switch per field with no map lookups and no allocations.
type op uint8

const (
	opSkip op = iota
	opBytes
	opPackets
	opBytesTotal
	opPacketsTotal
	opOutBytes
	opOutPackets
	opProto
	opTos
	opTCPFlags
	opSrcPort
	opDstPort
	opSrc4
	opDst4
	opSrc6
	opDst6
	opSrcMask
	opDstMask
	opInIf
	opOutIf
	opNextHop4
	opNextHop6
	opBGPNextHop4
	opBGPNextHop6
	opSrcAS
	opDstAS
	opFirstUptime // IE 22, ms of sysUptime
	opLastUptime  // IE 21
	opStartSec    // IE 150
	opEndSec      // IE 151
	opStartMs     // IE 152
	opEndMs       // IE 153
	opStartUs     // IE 154 (NTP format)
	opEndUs       // IE 155
	opStartNs     // IE 156 (NTP format)
	opEndNs       // IE 157
	opStartDelta  // IE 158, µs before export time
	opEndDelta    // IE 159
	opDurationMs  // IE 161
	opDurationUs  // IE 162
	opMinLen
	opMaxLen
	opFlowLabel
	opICMPTypeCode  // IE 32 (type*256+code)
	opICMPTypeCode6 // IE 139
	opICMPType
	opICMPCode
	opTTL
	opFragID
	opFragOffset
	opFragFlags
	opFwdStatus
	opSrcVlan
	opDstVlan
	opSrcMac
	opDstMac
	opIPVersion
	opEtype
	opSamplingInterval // IE 34
	opSamplerRandom    // IE 50
	opSamplerID        // IE 48 (v9 FLOW_SAMPLER_ID)
	opSelectorID       // IE 302
	opPacketInterval   // IE 305
	opPacketSpace      // IE 306
	opSamplingSize     // IE 309
	opSamplingPop      // IE 310
	opSysInitMs        // IE 160
)

// ieOps maps IANA information elements (and v9 field types, which share the
// numbers below 128) to ops.
var ieOps = map[uint16]op{
	1: opBytes, 2: opPackets, 85: opBytesTotal, 86: opPacketsTotal, 23: opOutBytes, 24: opOutPackets,
	4: opProto, 5: opTos, 6: opTCPFlags, 7: opSrcPort, 11: opDstPort,
	8: opSrc4, 12: opDst4, 27: opSrc6, 28: opDst6,
	9: opSrcMask, 29: opSrcMask, 13: opDstMask, 30: opDstMask,
	10: opInIf, 14: opOutIf, 15: opNextHop4, 62: opNextHop6, 18: opBGPNextHop4, 63: opBGPNextHop6,
	16: opSrcAS, 17: opDstAS,
	22: opFirstUptime, 21: opLastUptime, 150: opStartSec, 151: opEndSec, 152: opStartMs, 153: opEndMs,
	154: opStartUs, 155: opEndUs, 156: opStartNs, 157: opEndNs, 158: opStartDelta, 159: opEndDelta,
	161: opDurationMs, 162: opDurationUs,
	25: opMinLen, 26: opMaxLen, 31: opFlowLabel,
	32: opICMPTypeCode, 139: opICMPTypeCode6, 176: opICMPType, 177: opICMPCode, 178: opICMPType, 179: opICMPCode,
	192: opTTL, 54: opFragID, 88: opFragOffset, 197: opFragFlags, 89: opFwdStatus,
	58: opSrcVlan, 59: opDstVlan, 243: opSrcVlan, 56: opSrcMac, 80: opDstMac,
	60: opIPVersion, 256: opEtype,
	34: opSamplingInterval, 50: opSamplerRandom, 48: opSamplerID, 302: opSelectorID,
	305: opPacketInterval, 306: opPacketSpace, 309: opSamplingSize, 310: opSamplingPop,
	160: opSysInitMs,
}

// wantLen is the exact length an op needs; other lengths are skipped
// rather than misread (an "IPv4 address" of 3 bytes is not one).
func (o op) wantLen() int {
	switch o {
	case opSrc4, opDst4, opNextHop4, opBGPNextHop4:
		return 4
	case opSrc6, opDst6, opNextHop6, opBGPNextHop6:
		return 16
	case opSrcMac, opDstMac:
		return 6
	case opStartUs, opEndUs, opStartNs, opEndNs:
		return 8
	}
	return 0 // any length 1..8 (reduced-size encoding, RFC 7011 6.2)
}

// Field is a template field as persisted.
type Field struct {
	Type   uint16 `json:"type"`
	Length uint16 `json:"length"`
	PEN    uint32 `json:"pen,omitempty"`
}

type compiled struct {
	op     op
	length uint16 // 0xffff: variable length
}

// template is an immutable compiled template; a new definition replaces the
// pointer, so readers never lock while decoding records.
type template struct {
	ID       uint16  `json:"id"`
	Scopes   int     `json:"scopes"` // > 0 for options templates
	Options  bool    `json:"options"`
	Fields   []Field `json:"fields"`
	LastSeen int64   `json:"last_seen"` // unix ns
	ops      []compiled
	minLen   int
}

// errTemplate is returned for templates we refuse to use.
var errTemplate = fmt.Errorf("template invalid")

func compile(t *template) error {
	if len(t.Fields) == 0 {
		return fmt.Errorf("%w: no fields", errTemplate)
	}
	t.ops = make([]compiled, 0, len(t.Fields))
	t.minLen = 0
	for _, f := range t.Fields {
		if f.Length == 0 {
			// Reads nothing: dropping it means every op consumes at least
			// one byte, so decoding work is bounded by the set's length
			// (a template of 16k empty fields must not cost 16k steps per
			// byte of data).
			continue
		}
		o := opSkip
		if f.PEN == 0 {
			o = ieOps[f.Type]
		}
		if w := o.wantLen(); f.Length != 0xffff && ((w != 0 && int(f.Length) != w) || (w == 0 && f.Length > 8)) {
			o = opSkip
		}
		if f.Length == 0xffff {
			t.minLen++ // at least the 1-byte length
		} else {
			t.minLen += int(f.Length)
		}
		t.ops = append(t.ops, compiled{op: o, length: f.Length})
	}
	// A record of zero bytes would let a data set loop forever.
	if t.minLen == 0 {
		return fmt.Errorf("%w: zero-length record", errTemplate)
	}
	return nil
}

func fieldsOf(fs []netflow.Field, ipfixOptions bool) []Field {
	out := make([]Field, len(fs))
	for i, f := range fs {
		typ := f.Type
		if ipfixOptions && f.PenProvided {
			typ &^= 0x8000 // goflow2 keeps the enterprise bit on options fields
		}
		pen := f.Pen
		if f.PenProvided && pen == 0 {
			pen = 1<<32 - 1 // enterprise 0 with the bit set is still not IANA
		}
		out[i] = Field{Type: typ, Length: f.Length, PEN: pen}
	}
	return out
}

// uintN reads a big-endian unsigned integer of 1..8 bytes.
func uintN(b []byte) uint64 {
	switch len(b) {
	case 1:
		return uint64(b[0])
	case 2:
		return uint64(binary.BigEndian.Uint16(b))
	case 4:
		return uint64(binary.BigEndian.Uint32(b))
	case 8:
		return binary.BigEndian.Uint64(b)
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}
