package classify

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/packetworks/flowsentry/detector/baseline"
	"github.com/packetworks/flowsentry/detector/window"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// Mitigation prefixes by direction: inbound floods name the attacked
// destination and no source; outbound floods name the customer's sending
// host (or the subnet when no host dominates) as src_prefix.
func TestMitigationPrefixes(t *testing.T) {
	c, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	in, out := pb.Direction_DIRECTION_INBOUND, pb.Direction_DIRECTION_OUTBOUND
	host := func(i byte) []byte { return []byte{203, 0, 113, i} }
	remote := func(i byte) []byte { return []byte{192, 0, 2, i} }
	cases := []struct {
		name       string
		dir        pb.Direction
		srcs, dsts func(i int) []byte // of 20 equal flows
		wantSrc    string
		wantDst    string
	}{
		{name: "inbound to one host", dir: in, srcs: func(i int) []byte { return remote(byte(i)) },
			dsts: func(int) []byte { return host(5) }, wantSrc: "", wantDst: "203.0.113.5/32"},
		{name: "outbound from one host to one victim", dir: out, srcs: func(int) []byte { return host(9) },
			dsts: func(int) []byte { return remote(1) }, wantSrc: "203.0.113.9/32", wantDst: "192.0.2.1/32"},
		{name: "outbound from one host to many", dir: out, srcs: func(int) []byte { return host(9) },
			dsts: func(i int) []byte { return remote(byte(i)) }, wantSrc: "203.0.113.9/32", wantDst: ""},
		{name: "outbound from many hosts", dir: out, srcs: func(i int) []byte { return host(byte(i)) },
			dsts: func(int) []byte { return remote(1) }, wantSrc: "203.0.113.0/24", wantDst: "192.0.2.1/32"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := window.NewAgg(10)
			a.Reset(0)
			for i := 0; i < 20; i++ {
				a.Fold(&pb.Flow{Proto: 47, Packets: 50000, Bytes: 50000 * 1000, SrcAddr: tc.srcs(i), DstAddr: tc.dsts(i)}, i%10)
			}
			f := window.Compute(a, 0, 10)
			var exp [window.NumMetrics]baseline.Expectation
			for m := range exp {
				exp[m] = baseline.Expectation{Expected: f.Values[m] / 10, Score: 20}
			}
			fp := c.Fingerprint(&Input{Subnet: "203.0.113.0/24", Customer: "acme", Direction: tc.dir, F: &f, Exp: &exp, Warm: true}, Volumetric)
			m := fp.GetMitigation()
			if m.GetSrcPrefix() != tc.wantSrc || m.GetDstPrefix() != tc.wantDst {
				t.Fatalf("src %q dst %q, want %q %q", m.GetSrcPrefix(), m.GetDstPrefix(), tc.wantSrc, tc.wantDst)
			}
			if tc.wantSrc != "" {
				if _, err := netip.ParsePrefix(m.SrcPrefix); err != nil || !strings.Contains(m.Description, "src "+tc.wantSrc) {
					t.Errorf("src prefix %q, description %q", m.SrcPrefix, m.Description)
				}
			}
		})
	}
}
