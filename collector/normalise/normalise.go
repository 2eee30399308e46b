// Package normalise finishes a decoded flow before it is produced: it
// applies the sampling rate (the one place where bytes and packets are
// scaled) and tags the flow with customer, subnet key and direction from
// the customer inventory.
package normalise

import (
	"math/bits"
	"net/netip"

	"github.com/packetworks/flowsentry/schemas/inventory"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/prometheus/client_golang/prometheus"
)

// Sink receives normalised flows (valid only during the call).
type Sink interface {
	Flow(f *pb.Flow)
}

// Metrics counts what normalisation does.
type Metrics struct {
	Unprotected    prometheus.Counter // flows with neither side protected (dropped or kept)
	UnprotectedDrp prometheus.Counter
	BadAddr        prometheus.Counter
	Saturated      prometheus.Counter
}

// NewMetrics registers the metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Unprotected: prometheus.NewCounter(prometheus.CounterOpts{Name: "collector_flows_unprotected_total",
			Help: "Flows where neither address is in a protected network."}),
		UnprotectedDrp: prometheus.NewCounter(prometheus.CounterOpts{Name: "collector_flows_dropped_unprotected_total",
			Help: "Unprotected flows dropped (keep_unprotected: false)."}),
		BadAddr: prometheus.NewCounter(prometheus.CounterOpts{Name: "collector_flows_dropped_no_address_total",
			Help: "Flows dropped because they carry no valid source/destination address."}),
		Saturated: prometheus.NewCounter(prometheus.CounterOpts{Name: "collector_flows_counter_saturated_total",
			Help: "Flows whose bytes or packets times the sampling rate overflowed 64 bits (saturated)."}),
	}
	if reg != nil {
		reg.MustRegister(m.Unprotected, m.UnprotectedDrp, m.BadAddr, m.Saturated)
	}
	return m
}

// Normaliser is one worker's normaliser (not safe for concurrent use: it
// caches subnet key strings).
type Normaliser struct {
	inv             *inventory.Inventory
	keepUnprotected bool
	m               *Metrics
	next            Sink
	// keys caches the CIDR text of subnet keys so the hot path does not
	// allocate a string per flow. Bounded: reset when it grows too big.
	keys map[netip.Prefix]string
}

const maxKeys = 1 << 16

// New returns a normaliser that passes flows to next.
func New(inv *inventory.Inventory, keepUnprotected bool, m *Metrics, next Sink) *Normaliser {
	return &Normaliser{inv: inv, keepUnprotected: keepUnprotected, m: m, next: next, keys: map[netip.Prefix]string{}}
}

// Scale multiplies bytes and packets by the sampling rate. It is the only
// place in Flowsentry where sampling is applied: rate 0 (unknown) leaves
// the counts unscaled and SamplingApplied false; otherwise the counts are
// multiplied (saturating at 2^64-1) and SamplingApplied is true, so that no
// consumer ever scales twice. It reports whether a product saturated.
func Scale(f *pb.Flow) (saturated bool) {
	if f.SamplingApplied || f.SamplingRate == 0 {
		return false
	}
	var s1, s2 bool
	f.Bytes, s1 = mulSat(f.Bytes, f.SamplingRate)
	f.Packets, s2 = mulSat(f.Packets, f.SamplingRate)
	f.SamplingApplied = true
	return s1 || s2
}

func mulSat(a, b uint64) (uint64, bool) {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return ^uint64(0), true
	}
	return lo, false
}

// Flow normalises f and passes it on (or drops it, counted).
func (n *Normaliser) Flow(f *pb.Flow) {
	src, ok1 := netip.AddrFromSlice(f.SrcAddr)
	dst, ok2 := netip.AddrFromSlice(f.DstAddr)
	if !ok1 || !ok2 {
		n.m.BadAddr.Inc()
		return
	}
	if Scale(f) {
		n.m.Saturated.Inc()
	}
	// Inbound if the destination is protected; outbound if only the
	// source is. The subnet key comes from the protected side.
	if key, m, ok := n.inv.SubnetKey(dst); ok {
		n.tag(f, key, m, pb.Direction_DIRECTION_INBOUND)
	} else if key, m, ok := n.inv.SubnetKey(src); ok {
		n.tag(f, key, m, pb.Direction_DIRECTION_OUTBOUND)
	} else {
		n.m.Unprotected.Inc()
		if !n.keepUnprotected {
			n.m.UnprotectedDrp.Inc()
			return
		}
		f.Customer, f.Subnet, f.Direction = "", "", pb.Direction_DIRECTION_UNKNOWN
	}
	n.next.Flow(f)
}

func (n *Normaliser) tag(f *pb.Flow, key netip.Prefix, m inventory.Match, dir pb.Direction) {
	s, ok := n.keys[key]
	if !ok {
		if len(n.keys) >= maxKeys {
			clear(n.keys)
		}
		s = key.String()
		n.keys[key] = s
	}
	f.Subnet, f.Direction, f.Customer = s, dir, ""
	if m.Customer != nil {
		f.Customer = m.Customer.ID
	}
}
