package normalise

import (
	"net/netip"
	"testing"

	"github.com/packetworks/flowsentry/schemas/inventory"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
)

func testInventory(t testing.TB) *inventory.Inventory {
	inv, err := inventory.New(inventory.File{
		Protected: []string{"203.0.113.0/24", "2001:db8:1::/48"},
		Customers: []inventory.Customer{{ID: "acme", Prefixes: []string{"203.0.113.128/25"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

type capture []*pb.Flow

func (c *capture) Flow(f *pb.Flow) { *c = append(*c, proto.Clone(f).(*pb.Flow)) }

func ip(s string) []byte { return netip.MustParseAddr(s).AsSlice() }

func TestTagging(t *testing.T) {
	cases := []struct {
		name           string
		src, dst       string
		keep           bool
		wantDropped    bool
		dir            pb.Direction
		subnet, custID string
	}{
		{"inbound to customer", "198.51.100.1", "203.0.113.200", false, false, pb.Direction_DIRECTION_INBOUND, "203.0.113.128/25", "acme"},
		{"inbound to protected, granularity /24", "198.51.100.1", "203.0.113.5", false, false, pb.Direction_DIRECTION_INBOUND, "203.0.113.0/24", ""},
		{"outbound from customer", "203.0.113.200", "198.51.100.1", false, false, pb.Direction_DIRECTION_OUTBOUND, "203.0.113.128/25", "acme"},
		{"both protected is inbound", "203.0.113.5", "203.0.113.200", false, false, pb.Direction_DIRECTION_INBOUND, "203.0.113.128/25", "acme"},
		{"ipv6 inbound /64", "2001:db8::1", "2001:db8:1:2::9", false, false, pb.Direction_DIRECTION_INBOUND, "2001:db8:1:2::/64", ""},
		{"unprotected dropped", "198.51.100.1", "198.51.100.2", false, true, 0, "", ""},
		{"unprotected kept", "198.51.100.1", "198.51.100.2", true, false, pb.Direction_DIRECTION_UNKNOWN, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out capture
			m := NewMetrics(nil)
			n := New(testInventory(t), c.keep, m, &out)
			n.Flow(&pb.Flow{SrcAddr: ip(c.src), DstAddr: ip(c.dst), Bytes: 100, Packets: 2, SamplingRate: 10})
			if c.wantDropped {
				if len(out) != 0 || testutil.ToFloat64(m.UnprotectedDrp) != 1 {
					t.Fatalf("want a counted drop, got %d flows, %v drops", len(out), testutil.ToFloat64(m.UnprotectedDrp))
				}
				return
			}
			if len(out) != 1 {
				t.Fatalf("got %d flows", len(out))
			}
			f := out[0]
			if f.Direction != c.dir || f.Subnet != c.subnet || f.Customer != c.custID {
				t.Errorf("got %v %q %q, want %v %q %q", f.Direction, f.Subnet, f.Customer, c.dir, c.subnet, c.custID)
			}
			if f.Bytes != 1000 || f.Packets != 20 || !f.SamplingApplied {
				t.Errorf("scaling: %d bytes %d packets applied %v", f.Bytes, f.Packets, f.SamplingApplied)
			}
		})
	}
}

func TestScale(t *testing.T) {
	cases := []struct {
		name             string
		in               *pb.Flow
		bytes, pkts      uint64
		applied, satured bool
	}{
		{"unknown rate left alone", &pb.Flow{Bytes: 10, Packets: 1}, 10, 1, false, false},
		{"rate 1", &pb.Flow{Bytes: 10, Packets: 1, SamplingRate: 1}, 10, 1, true, false},
		{"already applied", &pb.Flow{Bytes: 10, Packets: 1, SamplingRate: 5, SamplingApplied: true}, 10, 1, true, false},
		{"saturates", &pb.Flow{Bytes: 1 << 60, Packets: 1, SamplingRate: 1 << 10}, ^uint64(0), 1 << 10, true, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := proto.Clone(c.in).(*pb.Flow)
			sat := Scale(f)
			if f.Bytes != c.bytes || f.Packets != c.pkts || f.SamplingApplied != c.applied || sat != c.satured {
				t.Errorf("got %d %d %v %v", f.Bytes, f.Packets, f.SamplingApplied, sat)
			}
		})
	}
}

func TestNoAddressDropped(t *testing.T) {
	var out capture
	m := NewMetrics(nil)
	New(testInventory(t), true, m, &out).Flow(&pb.Flow{SrcAddr: []byte{1, 2, 3}})
	if len(out) != 0 || testutil.ToFloat64(m.BadAddr) != 1 {
		t.Fatal("flow without valid addresses not dropped/counted")
	}
}

func BenchmarkNormalise(b *testing.B) {
	n := New(testInventory(b), false, NewMetrics(nil), nopSink{})
	f := &pb.Flow{SrcAddr: ip("198.51.100.1"), DstAddr: ip("203.0.113.200"), Bytes: 100, Packets: 2, SamplingRate: 10}
	b.ReportAllocs()
	for b.Loop() {
		f.SamplingApplied = false
		n.Flow(f)
	}
}

type nopSink struct{}

func (nopSink) Flow(*pb.Flow) {}
