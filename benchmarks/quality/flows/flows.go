// Package flows turns scenario records into the pb.Flow the detector
// reads, as the collector would: the fields the IPFIX decoder sets from the
// records benchmarks/quality/export sends, then the collector's own
// normaliser (sampling scaled once, customer, subnet key and direction
// from the inventory). The in-process paths (the static detector and the
// engine fold) use it; a test checks it against the real decoder.
package flows

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/packetworks/flowsentry/benchmarks/scenario"
	"github.com/packetworks/flowsentry/collector/normalise"
	"github.com/packetworks/flowsentry/schemas/inventory"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// Sink receives normalised flows (valid only during the call).
type Sink = normalise.Sink

// Scenario is one scenario of a run with the customer ids it uses in the
// shared inventory (scenarios are merged into one pipeline run, so their
// customer ids are made unique).
type Scenario struct {
	Name string
	SC   *scenario.Scenario
	// Domain is the first IPFIX observation domain of its exporters
	// (exporter i uses Domain+i).
	Domain uint32
}

// CustomerID is the inventory id of a scenario's customer.
func (s *Scenario) CustomerID(id string) string { return s.Name + "." + id }

// Inventory builds the inventory of every scenario's customers. It refuses
// overlapping prefixes across scenarios and prefixes outside the
// documentation ranges 198.18.0.0/15 and 2001:db8::/32, from which the
// generators never draw Internet addresses (so one scenario's remote
// hosts never land in another's subnets).
func Inventory(scs []*Scenario) (*inventory.Inventory, inventory.File, error) {
	allowed := []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("2001:db8::/32")}
	f := inventory.File{DefaultGranularity: inventory.Granularity{IPv4: 24, IPv6: 64}}
	owner := map[netip.Prefix]string{}
	var all []netip.Prefix
	for _, s := range scs {
		for _, c := range s.SC.Customers {
			ic := inventory.Customer{ID: s.CustomerID(c.ID), Name: c.Name}
			for _, sn := range c.Subnets {
				p := sn.ParsedPrefix()
				if !slices.ContainsFunc(allowed, func(a netip.Prefix) bool { return a.Bits() <= p.Bits() && a.Contains(p.Addr()) }) {
					return nil, f, fmt.Errorf("scenario %s: subnet %s is outside 198.18.0.0/15 and 2001:db8::/32", s.Name, p)
				}
				for _, q := range all {
					if q.Overlaps(p) {
						return nil, f, fmt.Errorf("scenario %s: subnet %s overlaps %s of scenario %s", s.Name, p, q, owner[q])
					}
				}
				all = append(all, p)
				owner[p] = s.Name
				ic.Prefixes = append(ic.Prefixes, p.String())
			}
			f.Customers = append(f.Customers, ic)
		}
	}
	inv, err := inventory.New(f)
	return inv, f, err
}

// Converter fills pb.Flows from records and passes them through the
// collector's normaliser to next. Not safe for concurrent use.
type Converter struct {
	norm *normalise.Normaliser
	f    pb.Flow
	src  [16]byte
	dst  [16]byte
	smp  []byte
}

// NewConverter returns a converter tagging flows with inv.
func NewConverter(inv *inventory.Inventory, next Sink) *Converter {
	return &Converter{norm: normalise.New(inv, false, normalise.NewMetrics(nil), next), smp: []byte{127, 0, 0, 1}}
}

// Flow converts r, exported by a router sampling 1:sampling in IPFIX
// observation domain domain and received at recv, and normalises it.
func (c *Converter) Flow(r *scenario.Record, sampling, domain uint32, recv time.Time) {
	c.f = pb.Flow{} //nolint:govet // zeroing, nothing is copied
	Fill(&c.f, r, sampling, domain, recv, c.src[:0], c.dst[:0])
	c.f.SamplerAddress = c.smp
	c.norm.Flow(&c.f)
}

// Fill sets f's fields as the collector's IPFIX decoder sets them for the
// record export sends (millisecond times, IE 32/139 ICMP type and code,
// fragment offset). src and dst are reused buffers for the addresses.
func Fill(f *pb.Flow, r *scenario.Record, sampling, domain uint32, recv time.Time, src, dst []byte) {
	g := &r.Flow
	f.Type = pb.Flow_IPFIX
	f.TimeReceivedNs = uint64(recv.UnixNano())
	f.TimeFlowStartNs = uint64(g.Start.UnixMilli()) * 1e6
	f.TimeFlowEndNs = uint64(g.End.UnixMilli()) * 1e6
	f.ObservationDomainId = domain
	f.SamplingRate = uint64(sampling)
	if g.Is6() {
		a, b := g.Src.As16(), g.Dst.As16()
		f.SrcAddr, f.DstAddr, f.Etype = append(src, a[:]...), append(dst, b[:]...), 0x86dd
	} else {
		a, b := g.Src.Unmap().As4(), g.Dst.Unmap().As4()
		f.SrcAddr, f.DstAddr, f.Etype = append(src, a[:]...), append(dst, b[:]...), 0x0800
	}
	f.Proto = uint32(g.Proto)
	f.TcpFlags = uint32(g.TCPFlags)
	f.IpTos = uint32(g.Tos)
	f.Bytes, f.Packets = g.Bytes, g.Packets
	f.InIf, f.OutIf = g.InIf, g.OutIf
	f.SrcAs, f.DstAs = g.SrcAS, g.DstAS
	f.SrcNet, f.DstNet = uint32(g.SrcMask), uint32(g.DstMask)
	if r.FragmentOffset > 0 {
		// export's fragment template has no ports, ICMP or TCP fields.
		f.FragmentOffset = uint32(r.FragmentOffset)
		return
	}
	f.SrcPort, f.DstPort = uint32(g.SrcPort), uint32(g.DstPort)
	f.IcmpType, f.IcmpCode = uint32(g.ICMPType), uint32(g.ICMPCode)
}

// Dir is the text of a pb.Direction as labels spell it.
func Dir(d pb.Direction) string {
	return strings.ToLower(strings.TrimPrefix(d.String(), "DIRECTION_"))
}
