// Package static is the comparison baseline of the quality harness: a
// FastNetMon-style static-threshold detector. Per host and per subnet key
// and direction, it keeps packets, bits and flows per second averaged the
// way FastNetMon does (every second, avg = now + e^(-1/T)·(avg - now) with
// T = average_calculation_time, 5 s), bans when an average crosses its
// threshold (FastNetMon's defaults: threshold_pps 20000, threshold_mbps
// 1000, threshold_flows 3500 with ban_for_flows off), names the attack as
// FastNetMon's detect_attack_type does (SYN, ICMP, fragments, UDP over 90 %
// of the packets, else unknown), and unbans ban_time (1900 s) later once
// the traffic is back under the thresholds (unban_only_if_attack_finished).
//
// Mapping to our classes: ATTACK_SYN_FLOOD → syn_flood, ATTACK_ICMP_FLOOD
// → icmp_flood, ATTACK_IP_FRAGMENTATION_FLOOD → fragment_flood,
// ATTACK_UDP_FLOOD → udp_flood, ATTACK_UNKNOWN → volumetric. It never
// names amplification, carpet_bombing, scan or traffic_drop: FastNetMon's
// thresholds have no such notion (its amplification names only shape
// flow-spec rules from captured packets).
package static

import (
	"math"
	"net/netip"
	"sort"
	"time"

	"github.com/packetworks/flowsentry/benchmarks/quality/flows"
	"github.com/packetworks/flowsentry/benchmarks/quality/score"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// Config holds FastNetMon's knobs (fastnetmon.conf names in comments).
type Config struct {
	ThresholdPPS   float64       // threshold_pps
	ThresholdMbps  float64       // threshold_mbps
	ThresholdFlows float64       // threshold_flows
	BanForPPS      bool          // ban_for_pps
	BanForMbps     bool          // ban_for_bandwidth
	BanForFlows    bool          // ban_for_flows
	AverageSeconds float64       // average_calculation_time (and _for_subnets)
	BanTime        time.Duration // ban_time
	// PerSubnet also applies the thresholds to each subnet key's total
	// (FastNetMon's hostgroup thresholds, same default numbers).
	PerSubnet bool
}

// Defaults are FastNetMon's documented defaults (src/fastnetmon.conf).
func Defaults() Config {
	return Config{ThresholdPPS: 20000, ThresholdMbps: 1000, ThresholdFlows: 3500, BanForPPS: true, BanForMbps: true,
		AverageSeconds: 5, BanTime: 1900 * time.Second, PerSubnet: true}
}

type key struct {
	subnet string
	host   netip.Addr // zero: the subnet's total
	dir    pb.Direction
}

type counters struct {
	packets, bits, flows, syn, udp, icmp, frag float64
}

func (c *counters) ewma(now *counters, e float64) {
	f := func(avg *float64, v float64) { *avg = v + e*(*avg-v) }
	f(&c.packets, now.packets)
	f(&c.bits, now.bits)
	f(&c.flows, now.flows)
	f(&c.syn, now.syn)
	f(&c.udp, now.udp)
	f(&c.icmp, now.icmp)
	f(&c.frag, now.frag)
}

type state struct {
	avg    counters
	banned int // index in Detector.incidents + 1; 0: not banned
}

// Detector is one FastNetMon instance. Feed it normalised flows second by
// second of event time: Flow for each flow of the second, then Tick.
type Detector struct {
	cfg       Config
	e         float64
	now       map[key]*counters
	st        map[key]*state
	incidents []score.Incident
	sec       time.Time
}

// New returns a detector.
func New(cfg Config) *Detector {
	return &Detector{cfg: cfg, e: math.Exp(-1 / cfg.AverageSeconds), now: map[key]*counters{}, st: map[key]*state{}}
}

// Flow adds one normalised flow (bytes and packets already scaled by the
// sampling rate) to the current second. Flows without a subnet key or
// direction are not ours (FastNetMon's "other" traffic).
func (d *Detector) Flow(f *pb.Flow) {
	dir := f.GetDirection()
	if f.GetSubnet() == "" || (dir != pb.Direction_DIRECTION_INBOUND && dir != pb.Direction_DIRECTION_OUTBOUND) {
		return
	}
	b := f.GetDstAddr()
	if dir == pb.Direction_DIRECTION_OUTBOUND {
		b = f.GetSrcAddr()
	}
	host, _ := netip.AddrFromSlice(b)
	d.add(key{f.GetSubnet(), host.Unmap(), dir}, f)
	if d.cfg.PerSubnet {
		d.add(key{f.GetSubnet(), netip.Addr{}, dir}, f)
	}
}

func (d *Detector) add(k key, f *pb.Flow) {
	c := d.now[k]
	if c == nil {
		c = &counters{}
		d.now[k] = c
	}
	p := float64(max(f.GetPackets(), 1))
	c.packets += p
	c.bits += 8 * float64(f.GetBytes())
	c.flows++
	switch f.GetProto() {
	case 6:
		if f.GetTcpFlags()&0x02 != 0 { // FastNetMon counts any packet with SYN set
			c.syn += p
		}
	case 17:
		c.udp += p
	case 1, 58:
		c.icmp += p
	}
	if f.GetFragmentOffset() > 0 || f.GetIpFlags()&1 != 0 {
		c.frag += p
	}
}

// Tick closes the second that starts at sec: averages move, bans and
// unbans happen.
func (d *Detector) Tick(sec time.Time) {
	zero := counters{}
	for k := range d.now {
		if d.st[k] == nil {
			d.st[k] = &state{}
		}
	}
	end := sec.Add(time.Second)
	for k, s := range d.st {
		now := d.now[k]
		if now == nil {
			now = &zero
		}
		s.avg.ewma(now, d.e)
		over := d.over(&s.avg)
		switch {
		case s.banned == 0 && over:
			d.incidents = append(d.incidents, score.Incident{ID: idOf(k, sec), Class: attackType(&s.avg), Subnet: k.subnet,
				Direction: flows.Dir(k.dir), Host: hostText(k.host), Start: sec, Opened: end})
			s.banned = len(d.incidents)
		case s.banned > 0 && !over:
			in := &d.incidents[s.banned-1]
			if !end.Before(in.Opened.Add(d.cfg.BanTime)) {
				in.End = end
				s.banned = 0
			}
		case s.banned == 0 && s.avg.packets < 0.5 && s.avg.bits < 8:
			delete(d.st, k) // idle: forget
		}
	}
	clear(d.now)
	d.sec = end
}

func (d *Detector) over(c *counters) bool {
	return (d.cfg.BanForPPS && c.packets > d.cfg.ThresholdPPS) || (d.cfg.BanForMbps && c.bits/1e6 > d.cfg.ThresholdMbps) ||
		(d.cfg.BanForFlows && c.flows > d.cfg.ThresholdFlows)
}

// attackType is FastNetMon's detect_attack_type on the averaged counters.
func attackType(c *counters) string {
	const share = 0.9
	switch {
	case c.syn > share*c.packets:
		return "syn_flood"
	case c.icmp > share*c.packets:
		return "icmp_flood"
	case c.frag > share*c.packets:
		return "fragment_flood"
	case c.udp > share*c.packets:
		return "udp_flood"
	}
	return "volumetric"
}

func hostText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func idOf(k key, t time.Time) string {
	h := "subnet"
	if k.host.IsValid() {
		h = k.host.String()
	}
	return "static:" + k.subnet + "|" + flows.Dir(k.dir) + "|" + h + "|" + t.UTC().Format(time.RFC3339)
}

// Incidents returns every ban so far, by start.
func (d *Detector) Incidents() []score.Incident {
	out := append([]score.Incident(nil), d.incidents...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// Tracked is how many host and subnet keys have averages (tests, memory).
func (d *Detector) Tracked() int { return len(d.st) }
