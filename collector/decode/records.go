package decode

import (
	"encoding/binary"
	"fmt"

	"github.com/packetworks/flowsentry/schemas/pb"
)

// ntpEpochOffset is 1900-01-01 to 1970-01-01 in seconds.
const ntpEpochOffset = 2208988800

// ntpNs converts an IPFIX dateTimeMicroseconds/Nanoseconds value (NTP
// format: seconds since 1900 and a 32-bit fraction, RFC 7011 6.1.9-10).
// Some exporters send plain Unix micro/nanoseconds instead; a "seconds since
// 1900" part before 1970 can only be that, so it is read as such.
func ntpNs(v uint64, unit uint64) int64 {
	secs := v >> 32
	if secs < ntpEpochOffset {
		return int64(v * (1e9 / unit))
	}
	ns := ((v&0xffffffff)*1e9 + 1<<31) >> 32 // rounded, not truncated
	if unit == 1e6 {
		ns = (ns + 500) / 1000 * 1000 // the low 11 bits are not significant
	}
	return int64((secs-ntpEpochOffset)*1e9 + ns)
}

// times collects a record's time fields before they can be resolved.
type times struct {
	has                  uint16
	firstUp, lastUp      uint32
	start, end, duration int64 // ns
}

const (
	hasFirstUp = 1 << iota
	hasLastUp
	hasStart
	hasEnd
	hasDuration
)

// resolve sets the flow's start and end. It returns false when the record
// had no usable time and the receive time was used instead.
func (tm *times) resolve(f *pb.Flow, hdr *header, sysInitMs uint64) bool {
	ok := true
	upToNs := func(v uint32) (int64, bool) {
		switch {
		case hdr.version == 9 || hdr.version == 5:
			// v9/v5: ms of sysUptime; the header gives uptime at export.
			// int32 of the difference survives the 49.7-day wrap.
			return (hdr.exportMs - int64(int32(hdr.uptime-v))) * 1e6, true
		case sysInitMs > 0 && sysInitMs < 1<<50: // beyond: garbage, not a time
			t := int64(sysInitMs) + int64(v)
			if t+(1<<31) < hdr.exportMs { // uptime wrapped (every 49.7 days)
				t += ((hdr.exportMs-t-(1<<31))>>32 + 1) << 32
			}
			return t * 1e6, true
		}
		return 0, false
	}
	if tm.has&hasStart == 0 && tm.has&hasFirstUp != 0 {
		if tm.start, ok = upToNs(tm.firstUp); ok {
			tm.has |= hasStart
		}
	}
	if tm.has&hasEnd == 0 && tm.has&hasLastUp != 0 {
		if tm.end, ok = upToNs(tm.lastUp); ok {
			tm.has |= hasEnd
		}
	}
	if tm.has&hasDuration != 0 {
		if tm.has&hasStart != 0 && tm.has&hasEnd == 0 {
			tm.end, tm.has = tm.start+tm.duration, tm.has|hasEnd
		} else if tm.has&hasEnd != 0 && tm.has&hasStart == 0 {
			tm.start, tm.has = tm.end-tm.duration, tm.has|hasStart
		}
	}
	switch {
	case tm.has&(hasStart|hasEnd) == hasStart|hasEnd:
	case tm.has&hasStart != 0:
		tm.end = tm.start
	case tm.has&hasEnd != 0:
		tm.start = tm.end
	default:
		tm.start, tm.end = hdr.received, hdr.received
		ok = false
	}
	f.TimeFlowStartNs, f.TimeFlowEndNs = clampNs(tm.start), clampNs(tm.end)
	return ok
}

func clampNs(v int64) uint64 {
	if v < 0 {
		return 0
	}
	return uint64(v)
}

// recordSampling collects sampling fields found in a record.
type recordSampling struct {
	interval, random, pktInterval, pktSpace, size, pop uint64
	samplerID                                          uint64
	hasSampler                                         bool
}

func (s *recordSampling) rate() uint64 {
	switch {
	case s.interval > 0:
		return s.interval
	case s.random > 0:
		return s.random
	case s.pktInterval > 0:
		// Take pktInterval packets, skip pktSpace: 1 in (i+s)/i.
		return (s.pktInterval + s.pktSpace) / s.pktInterval
	case s.size > 0 && s.pop >= s.size:
		return s.pop / s.size
	}
	return 0
}

func (d *Decoder) resetFlow() *pb.Flow {
	f := &d.flow
	*f = pb.Flow{} //nolint:govet // zeroing, nothing is copied
	d.srcMac, d.dstMac = 0, 0
	return f
}

// records decodes every data record of a set with template t.
func (d *Decoder) records(hdr *header, snap *snapshot, data []byte) error {
	t := snap.t
	pos := 0
	fallback := d.exp.fallbackRate(d.st.cfg)
	first := true
	for len(data)-pos >= t.minLen {
		f := d.resetFlow()
		var tm times
		var smp recordSampling
		var bytes, pkts, bytesTot, pktsTot, outBytes, outPkts uint64
		var hasBytes, hasPkts, hasBytesTot, hasPktsTot, hasICMP bool
		var ipVersion uint64
		for _, c := range t.ops {
			l := int(c.length)
			if c.length == 0xffff {
				if pos >= len(data) {
					return d.fail(ReasonTruncated, fmt.Errorf("template %d: variable-length field past the set end", t.ID))
				}
				l = int(data[pos])
				pos++
				if l == 0xff {
					if pos+2 > len(data) {
						return d.fail(ReasonTruncated, fmt.Errorf("template %d: variable-length field past the set end", t.ID))
					}
					l = int(binary.BigEndian.Uint16(data[pos:]))
					pos += 2
				}
			}
			if pos+l > len(data) {
				return d.fail(ReasonTruncated, fmt.Errorf("template %d: record of %d bytes left, field needs %d", t.ID, len(data)-pos, l))
			}
			b := data[pos : pos+l]
			pos += l
			if c.op == opSkip {
				continue
			}
			if w := c.op.wantLen(); (w != 0 && l != w) || (w == 0 && (l == 0 || l > 8)) {
				continue // only reachable with variable-length fields
			}
			switch c.op {
			case opBytes:
				bytes, hasBytes = uintN(b), true
			case opPackets:
				pkts, hasPkts = uintN(b), true
			case opBytesTotal:
				bytesTot, hasBytesTot = uintN(b), true
			case opPacketsTotal:
				pktsTot, hasPktsTot = uintN(b), true
			case opOutBytes:
				outBytes = uintN(b)
			case opOutPackets:
				outPkts = uintN(b)
			case opProto:
				f.Proto = uint32(uintN(b))
			case opTos:
				f.IpTos = uint32(uintN(b))
			case opTCPFlags:
				f.TcpFlags = uint32(uintN(b) & 0xff)
			case opSrcPort:
				f.SrcPort = uint32(uintN(b))
			case opDstPort:
				f.DstPort = uint32(uintN(b))
			case opSrc4:
				f.SrcAddr = append(d.src[:0], b...)
				f.Etype = 0x0800
			case opDst4:
				f.DstAddr = append(d.dst[:0], b...)
			case opSrc6:
				f.SrcAddr = append(d.src[:0], b...)
				f.Etype = 0x86dd
			case opDst6:
				f.DstAddr = append(d.dst[:0], b...)
			case opSrcMask:
				f.SrcNet = uint32(uintN(b))
			case opDstMask:
				f.DstNet = uint32(uintN(b))
			case opInIf:
				f.InIf = uint32(uintN(b))
			case opOutIf:
				f.OutIf = uint32(uintN(b))
			case opNextHop4, opNextHop6:
				f.NextHop = append(d.nh[:0], b...)
			case opBGPNextHop4, opBGPNextHop6:
				if len(f.NextHop) == 0 || isZero(f.NextHop) {
					f.NextHop = append(d.nh[:0], b...)
				}
			case opSrcAS:
				f.SrcAs = uint32(uintN(b))
			case opDstAS:
				f.DstAs = uint32(uintN(b))
			case opFirstUptime:
				tm.firstUp, tm.has = uint32(uintN(b)), tm.has|hasFirstUp
			case opLastUptime:
				tm.lastUp, tm.has = uint32(uintN(b)), tm.has|hasLastUp
			case opStartSec:
				tm.start, tm.has = int64(uintN(b))*1e9, tm.has|hasStart
			case opEndSec:
				tm.end, tm.has = int64(uintN(b))*1e9, tm.has|hasEnd
			case opStartMs:
				tm.start, tm.has = int64(uintN(b))*1e6, tm.has|hasStart
			case opEndMs:
				tm.end, tm.has = int64(uintN(b))*1e6, tm.has|hasEnd
			case opStartUs:
				tm.start, tm.has = ntpNs(uintN(b), 1e6), tm.has|hasStart
			case opEndUs:
				tm.end, tm.has = ntpNs(uintN(b), 1e6), tm.has|hasEnd
			case opStartNs:
				tm.start, tm.has = ntpNs(uintN(b), 1e9), tm.has|hasStart
			case opEndNs:
				tm.end, tm.has = ntpNs(uintN(b), 1e9), tm.has|hasEnd
			case opStartDelta:
				tm.start, tm.has = hdr.exportMs*1e6-int64(uintN(b))*1e3, tm.has|hasStart
			case opEndDelta:
				tm.end, tm.has = hdr.exportMs*1e6-int64(uintN(b))*1e3, tm.has|hasEnd
			case opDurationMs:
				tm.duration, tm.has = int64(uintN(b))*1e6, tm.has|hasDuration
			case opDurationUs:
				tm.duration, tm.has = int64(uintN(b))*1e3, tm.has|hasDuration
			case opMinLen:
				f.MinPacketLength = uint32(uintN(b))
			case opMaxLen:
				f.MaxPacketLength = uint32(uintN(b))
			case opFlowLabel:
				f.Ipv6FlowLabel = uint32(uintN(b) & 0xfffff)
			case opICMPTypeCode, opICMPTypeCode6:
				v := uintN(b)
				f.IcmpType, f.IcmpCode, hasICMP = uint32(v>>8&0xff), uint32(v&0xff), true
			case opICMPType:
				f.IcmpType, hasICMP = uint32(uintN(b)), true
			case opICMPCode:
				f.IcmpCode, hasICMP = uint32(uintN(b)), true
			case opTTL:
				f.IpTtl = uint32(uintN(b))
			case opFragID:
				f.FragmentId = uint32(uintN(b))
			case opFragOffset:
				f.FragmentOffset = uint32(uintN(b))
			case opFragFlags:
				f.IpFlags = uint32(uintN(b))
			case opFwdStatus:
				f.ForwardingStatus = uint32(uintN(b))
			case opSrcVlan:
				f.SrcVlan = uint32(uintN(b))
			case opDstVlan:
				f.DstVlan = uint32(uintN(b))
			case opSrcMac:
				f.SrcMac = uintN(b)
			case opDstMac:
				f.DstMac = uintN(b)
			case opIPVersion:
				ipVersion = uintN(b)
			case opEtype:
				f.Etype = uint32(uintN(b))
			case opSamplingInterval:
				smp.interval = uintN(b)
			case opSamplerRandom:
				smp.random = uintN(b)
			case opSamplerID, opSelectorID:
				smp.samplerID, smp.hasSampler = uintN(b), true
			case opPacketInterval:
				smp.pktInterval = uintN(b)
			case opPacketSpace:
				smp.pktSpace = uintN(b)
			case opSamplingSize:
				smp.size = uintN(b)
			case opSamplingPop:
				smp.pop = uintN(b)
			}
		}
		switch {
		case hasBytes:
		case hasBytesTot:
			bytes = bytesTot
		default:
			bytes = outBytes
		}
		switch {
		case hasPkts:
		case hasPktsTot:
			pkts = pktsTot
		default:
			pkts = outPkts
		}
		f.Bytes, f.Packets = bytes, pkts
		if ipVersion == 6 {
			f.Etype = 0x86dd
		} else if ipVersion == 4 {
			f.Etype = 0x0800
		}
		if !hasICMP && (f.Proto == 1 || f.Proto == 58) {
			// Cisco and softflowd put ICMP type/code in the destination port.
			f.IcmpType, f.IcmpCode = f.DstPort>>8, f.DstPort&0xff
		}
		rate := smp.rate()
		if rate == 0 && smp.hasSampler {
			rate = d.samplerRate(hdr, snap.domain, smp.samplerID)
		}
		if rate == 0 {
			rate = snap.rate
		}
		d.emit(f, hdr, &tm, snap.sysInitMs, fallback.apply(rate), first)
		first = false
	}
	return nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func (d *Decoder) samplerRate(hdr *header, dm *domain, id uint64) uint64 {
	if dm == nil {
		return 0
	}
	d.exp.mu.RLock()
	defer d.exp.mu.RUnlock()
	return dm.samplers[id]
}

// emit fills the common fields and hands the flow on.
func (d *Decoder) emit(f *pb.Flow, hdr *header, tm *times, sysInitMs, rate uint64, observeLag bool) {
	switch hdr.version {
	case 5:
		f.Type = pb.Flow_NETFLOW_V5
	case 9:
		f.Type = pb.Flow_NETFLOW_V9
	case 10:
		f.Type = pb.Flow_IPFIX
	}
	f.TimeReceivedNs = uint64(hdr.received)
	f.SequenceNum = hdr.seq
	f.ObservationDomainId = hdr.domain
	f.SamplerAddress = d.samplerAddr
	f.SamplingRate = rate
	f.SrcMac, f.DstMac = f.SrcMac|d.srcMac, f.DstMac|d.dstMac
	if !tm.resolve(f, hdr, sysInitMs) && f.Type != pb.Flow_SFLOW_5 {
		d.exp.m.timeFb.Inc()
	}
	if rate == 0 {
		d.exp.m.noRate.Inc()
	}
	if observeLag {
		// One observation per set: cheap, and enough to see exporter lag.
		lag := hdr.received - int64(f.TimeFlowEndNs)
		if lag < 0 {
			lag = 0
		}
		d.exp.m.lag.Observe(float64(lag) / 1e9)
	}
	d.flows++
	d.h.Flow(f)
}

// optionsSet reads options data records: sampling rates (per sampler id or
// exporter-wide) and the system init time used by IPFIX IE 21/22.
func (d *Decoder) optionsSet(hdr *header, k domainKey, t *template, data []byte) error {
	pos := 0
	for len(data)-pos >= t.minLen {
		var smp recordSampling
		var sysInit uint64
		for _, c := range t.ops {
			l := int(c.length)
			if c.length == 0xffff {
				if pos >= len(data) {
					return d.fail(ReasonTruncated, fmt.Errorf("options template %d: past the set end", t.ID))
				}
				l = int(data[pos])
				pos++
				if l == 0xff {
					if pos+2 > len(data) {
						return d.fail(ReasonTruncated, fmt.Errorf("options template %d: past the set end", t.ID))
					}
					l = int(binary.BigEndian.Uint16(data[pos:]))
					pos += 2
				}
			}
			if pos+l > len(data) {
				return d.fail(ReasonTruncated, fmt.Errorf("options template %d: record past the set end", t.ID))
			}
			b := data[pos : pos+l]
			pos += l
			if l == 0 || l > 8 {
				continue
			}
			switch c.op {
			case opSamplingInterval:
				smp.interval = uintN(b)
			case opSamplerRandom:
				smp.random = uintN(b)
			case opSamplerID, opSelectorID:
				smp.samplerID, smp.hasSampler = uintN(b), true
			case opPacketInterval:
				smp.pktInterval = uintN(b)
			case opPacketSpace:
				smp.pktSpace = uintN(b)
			case opSamplingSize:
				smp.size = uintN(b)
			case opSamplingPop:
				smp.pop = uintN(b)
			case opSysInitMs:
				sysInit = uintN(b)
			}
		}
		rate := smp.rate()
		if rate == 0 && sysInit == 0 {
			continue
		}
		e := d.exp
		e.mu.Lock()
		dm := e.domainLocked(k)
		if rate > 0 {
			if smp.hasSampler {
				if dm.samplers[smp.samplerID] != rate {
					dm.samplers[smp.samplerID] = rate
					d.st.dirty.Store(true)
				}
			} else if dm.rate != rate {
				dm.rate = rate
				d.st.dirty.Store(true)
			}
		}
		if sysInit > 0 && dm.sysInitMs != sysInit {
			dm.sysInitMs = sysInit
			d.st.dirty.Store(true)
		}
		dm.lastSeen = hdr.received
		e.mu.Unlock()
	}
	return nil
}

// fallbackRate is the configured sampling for one exporter.
type fallbackRate struct {
	rate, def uint64
	force     bool
}

func (e *exporter) fallbackRate(cfg Config) fallbackRate {
	ov := cfg.Sampling[e.addr]
	return fallbackRate{rate: ov.Rate, force: ov.Force && ov.Rate > 0, def: cfg.DefaultRate}
}

// apply picks the rate for a flow: a forced override, else what the
// exporter announced, else the exporter's configured rate, else the default.
func (fr fallbackRate) apply(announced uint64) uint64 {
	switch {
	case fr.force:
		return fr.rate
	case announced > 0:
		return announced
	case fr.rate > 0:
		return fr.rate
	}
	return fr.def
}
