package static

import (
	"net/netip"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/schemas/pb"
)

var t0 = time.Date(2026, 1, 7, 14, 0, 0, 0, time.UTC)

// feed sends pps packets a second (in 100 flows) of proto/flags to host
// for secs seconds from second from, and ticks.
func feed(d *Detector, host string, from, secs int, pps float64, proto, flags uint32, frag bool) {
	a := netip.MustParseAddr(host).As4()
	for s := from; s < from+secs; s++ {
		for range 100 {
			f := &pb.Flow{Subnet: "198.18.0.0/24", Direction: pb.Direction_DIRECTION_INBOUND, DstAddr: a[:], SrcAddr: []byte{203, 0, 113, 1},
				Packets: uint64(pps / 100), Bytes: uint64(pps / 100 * 60), Proto: proto, TcpFlags: flags}
			if frag {
				f.FragmentOffset = 185
			}
			d.Flow(f)
		}
		d.Tick(t0.Add(time.Duration(s) * time.Second))
	}
}

func TestThresholdsAndAttackTypes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		pps         float64
		proto, flag uint32
		frag        bool
		class       string
		startSec    int // first second over the 5 s average
	}{
		{"syn flood", 50000, 6, 0x02, false, "syn_flood", 2},
		{"udp flood", 50000, 17, 0, false, "udp_flood", 2},
		{"icmp flood", 200000, 1, 0, false, "icmp_flood", 0},
		{"fragments", 50000, 17, 0, true, "fragment_flood", 2},
		{"gre", 50000, 47, 0, false, "volumetric", 2},
		{"below threshold", 15000, 6, 0x02, false, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := New(Defaults())
			feed(d, "198.18.0.10", 0, 30, tc.pps, tc.proto, tc.flag, tc.frag)
			incs := d.Incidents()
			if tc.class == "" {
				if len(incs) != 0 {
					t.Fatalf("%d incidents below the threshold: %+v", len(incs), incs)
				}
				return
			}
			// One per host and one for the subnet key (hostgroup total).
			if len(incs) != 2 {
				t.Fatalf("%d incidents, want the host and the subnet: %+v", len(incs), incs)
			}
			for _, in := range incs {
				if in.Class != tc.class || !in.Start.Equal(t0.Add(time.Duration(tc.startSec)*time.Second)) || !in.End.IsZero() {
					t.Errorf("incident %+v, want %s from second %d, still open", in, tc.class, tc.startSec)
				}
			}
			if incs[0].Host != "198.18.0.10" && incs[1].Host != "198.18.0.10" {
				t.Errorf("no host incident: %+v", incs)
			}
		})
	}
}

func TestUnbanAfterBanTime(t *testing.T) {
	cfg := Defaults()
	cfg.BanTime = 60 * time.Second
	cfg.PerSubnet = false
	d := New(cfg)
	feed(d, "198.18.0.10", 0, 100, 50000, 17, 0, false) // 100 s of attack: still on when the ban time is up
	feed(d, "198.18.0.10", 100, 40, 100, 17, 0, false)  // then quiet
	incs := d.Incidents()
	if len(incs) != 1 {
		t.Fatalf("%d incidents: %+v", len(incs), incs)
	}
	// The average falls under 20 kpps within 5 s of the attack's end.
	if end := incs[0].End.Sub(t0); end < 100*time.Second || end > 106*time.Second {
		t.Fatalf("unbanned at +%s, want right after the attack ended (+100 s): the ban outlasts ban_time while the attack goes on", end)
	}
	if d.Tracked() != 1 {
		t.Errorf("%d keys tracked after the quiet period", d.Tracked())
	}
}
