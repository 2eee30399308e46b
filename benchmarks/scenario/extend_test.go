package scenario

import (
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const ext = base + `
  - id: bulk
    exporter: r3
    subnets_from: {count: 20, prefix: 198.19.0.0/16, profile: mixed, hosts: [4, 12], in_pps: [2000, 8000], out_pps: 3000, peak_hour: [10, 22]}
`

func TestNewKeysNameTheKey(t *testing.T) {
	atk := func(s string) string { return ext + "attacks:\n  - " + s + "\n" }
	for _, tc := range []struct{ name, yaml, want string }{
		{"weekly length", strings.Replace(ext, "noise: 0", "noise: 0\nweekly: [1, 1, 0.5]", 1), "weekly: 3 values"},
		{"weekly value", strings.Replace(ext, "noise: 0", "noise: 0\nweekly: [1, 1, 1, 1, 1, 0, 1]", 1), "weekly[5]"},
		{"template count", strings.Replace(ext, "count: 20, prefix: 198.19.0.0/16", "count: 300, prefix: 198.19.0.0/16", 1), "customers[3].subnets_from.count"},
		{"template range", strings.Replace(ext, "in_pps: [2000, 8000]", "in_pps: [8000, 2000]", 1), "customers[3].subnets_from.in_pps"},
		{"template required", strings.Replace(ext, "out_pps: 3000, ", "", 1), "customers[3].subnets_from.out_pps: required"},
		{"template profile", strings.Replace(ext, "profile: mixed", "profile: isp", 1), "customers[3].subnets_from.profile"},
		{"pps and magnitude", atk("{kind: udp_flood, customer: bulk, subnet: 1, start: 1s, duration: 1s, pps: 5, magnitude: 3, sources: 9}"), "attacks[0].magnitude: give pps or magnitude"},
		{"no rate", atk("{kind: icmp_flood, customer: bulk, subnet: 1, start: 1s, duration: 1s, sources: 9}"), "attacks[0].pps: pps or magnitude is required"},
		{"subnet index", atk("{kind: icmp_flood, customer: bulk, subnet: 20, start: 1s, duration: 1s, magnitude: 3, sources: 9}"), "attacks[0].subnet: 20"},
		{"target and subnet", atk("{kind: icmp_flood, customer: bulk, subnet: 2, target: 198.19.2.10, start: 1s, duration: 1s, magnitude: 3, sources: 9}"), "attacks[0].target: give target or subnet"},
		{"level range", atk("{kind: traffic_drop, customer: bulk, subnet: 1, start: 1s, duration: 1s, level: 1.5}"), "attacks[0].level"},
		{"level on a flood", atk("{kind: udp_flood, customer: bulk, subnet: 1, start: 1s, duration: 1s, magnitude: 3, level: 0.5, sources: 9}"), "attacks[0].level: only for"},
		{"drop has no rate", atk("{kind: traffic_drop, customer: bulk, subnet: 1, start: 1s, duration: 1s, magnitude: 3}"), "attacks[0].pps: traffic_drop has no rate"},
		{"crowd magnitude", atk("{kind: flash_crowd, customer: bulk, subnet: 1, start: 1s, duration: 1s, magnitude: 0.5}"), "attacks[0].magnitude: 0.5"},
		{"benign class", atk("{kind: flash_crowd, customer: bulk, subnet: 1, start: 1s, duration: 1s, magnitude: 2, expect: {class: volumetric}}"), "attacks[0].expect.class"},
		{"both on a flood", atk("{kind: udp_flood, customer: bulk, subnet: 1, start: 1s, duration: 1s, magnitude: 2, sources: 3, expect: {direction: both}}"), "attacks[0].expect.direction"},
		{"drop on a host", atk("{kind: traffic_drop, customer: a, target: 198.18.10.10/32, start: 1s, duration: 1s}"), "attacks[0].target: traffic_drop acts on a whole subnet"},
		{"fragment v6", atk(`{kind: fragment_flood, customer: a, target: "2001:db8:a::10", start: 1s, duration: 1s, pps: 5, sources: 3}`), "attacks[0].target: fragment_flood"},
		{"sweep sizes", ext + "sweeps: [{kind: syn_flood, customer: bulk, port: 80, sources: 9}]\n", "sweeps[0].magnitudes"},
		{"sweep levels", ext + "sweeps: [{kind: syn_flood, customer: bulk, port: 80, sources: 9, levels: [0.1]}]\n", "sweeps[0].levels"},
		{"sweep past the subnets", ext + "sweeps: [{kind: udp_flood, customer: bulk, first_subnet: 19, magnitudes: [2, 3], sources: 9}]\n", "attacks[1].subnet: 20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
	sc, err := Parse([]byte(ext))
	if err != nil {
		t.Fatalf("valid scenario refused: %v", err)
	}
	bulk := sc.Customers[3].Subnets
	if len(bulk) != 20 || bulk[0].Prefix != "198.19.0.0/24" || bulk[19].Prefix != "198.19.19.0/24" {
		t.Fatalf("subnets_from made %d subnets, first %s last %s", len(bulk), bulk[0].Prefix, bulk[len(bulk)-1].Prefix)
	}
	for _, sn := range bulk {
		if sn.InPPS < 2000 || sn.InPPS > 8000 || sn.OutPPS != 3000 || sn.Hosts < 4 || sn.Hosts > 12 || *sn.PeakHour < 10 || *sn.PeakHour > 22 {
			t.Fatalf("generated subnet outside the template: %+v", sn)
		}
	}
	again, _ := Parse([]byte(ext))
	if again.Customers[3].Subnets[7].InPPS != bulk[7].InPPS {
		t.Fatal("subnets_from is not reproducible from the seed")
	}
	if err := sc.Validate(); err != nil || len(sc.Customers[3].Subnets) != 20 {
		t.Fatalf("second Validate: %v, %d subnets", err, len(sc.Customers[3].Subnets))
	}
}

func TestNthSubnet(t *testing.T) {
	for _, tc := range []struct {
		base string
		bits int
		i    int
		want string
	}{
		{"198.18.0.0", 24, 3, "198.18.3.0"}, {"198.18.0.0", 32, 300, "198.18.1.44"},
		{"2001:db8::", 48, 5, "2001:db8:5::"}, {"2001:db8::", 64, 1, "2001:db8:0:1::"}, {"2001:db8::", 128, 10, "2001:db8::a"},
	} {
		if got := nthSubnet(netip.MustParseAddr(tc.base), tc.bits, tc.i); got.String() != tc.want {
			t.Errorf("nthSubnet(%s, /%d, %d) = %s, want %s", tc.base, tc.bits, tc.i, got, tc.want)
		}
	}
}

func TestWeeklyShape(t *testing.T) {
	sc, _ := Parse([]byte(strings.Replace(base, "noise: 0", "noise: 0\nweekly: [1, 1, 1, 1, 1, 0.5, 0.5]", 1)))
	sc.Diurnal.Amplitude = 0
	mon := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC) // a Monday noon
	for _, tc := range []struct {
		at   time.Time
		want float64
	}{{mon, 1}, {mon.AddDate(0, 0, 5), 0.5}, {mon.AddDate(0, 0, 4).Add(12 * time.Hour), 0.75}, {mon.AddDate(0, 0, 6).Add(12 * time.Hour), 0.75}} {
		if got := sc.shape(nil, tc.at); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: weekly factor %g, want %g", tc.at.Format("Mon 15:04"), got, tc.want)
		}
	}
}

// TestEventKinds generates one event of each new kind and checks what the
// records carry and how much of it there is.
func TestEventKinds(t *testing.T) {
	events := `sweeps:
  - {kind: volumetric, customer: bulk, first_subnet: 0, magnitudes: [4], durations: [20s], sources: 50}
  - {kind: udp_flood, customer: bulk, first_subnet: 1, magnitudes: [4], durations: [20s], sources: 50}
  - {kind: icmp_flood, customer: bulk, first_subnet: 2, magnitudes: [4], durations: [20s], sources: 50}
  - {kind: fragment_flood, customer: bulk, first_subnet: 3, magnitudes: [4], durations: [20s], sources: 50}
  - {kind: flash_crowd, customer: bulk, first_subnet: 4, magnitudes: [3], durations: [20s], sources: 3000}
  - {kind: traffic_drop, customer: bulk, first_subnet: 5, levels: [0.1], durations: [20s]}
  - {kind: scan, customer: bulk, first_subnet: 6, magnitudes: [0.5], durations: [20s], port: 22}
`
	sc, err := Parse([]byte(ext + events))
	if err != nil {
		t.Fatal(err)
	}
	sc.Diurnal.Amplitude = 0
	live := time.Date(2026, 1, 7, 14, 0, 0, 0, time.UTC)
	g := NewGenerator(sc)
	g.StartLive(live)
	var recs []Record
	for c := live.Add(-20 * time.Second); c.Before(live.Add(20 * time.Second)); c = c.Add(time.Second) {
		recs = g.Step(c, c.Add(time.Second), recs)
	}
	type key struct {
		sub     int
		inbound bool
		live    bool
	}
	pk := map[key]float64{}        // background packets
	att := map[int]float64{}       // attack packets
	crowd := map[netip.Addr]bool{} // flash crowd clients
	bulk := sc.Customers[3].Subnets
	for _, r := range recs {
		f := r.Flow
		inbound := f.InIf == 1
		local := f.Dst
		if !inbound {
			local = f.Src
		}
		sub := -1
		for i := range bulk {
			if bulk[i].ParsedPrefix().Contains(local) {
				sub = i
			}
		}
		if sub < 0 {
			continue
		}
		n := float64(f.Packets)
		if r.Attack < 0 {
			pk[key{sub, inbound, !f.End.Before(live)}] += n
			continue
		}
		a := &sc.Attacks[r.Attack]
		att[r.Attack] += n
		switch a.Kind {
		case Volumetric:
			if f.Proto != 47 || f.Bytes != 1400 {
				t.Fatalf("volumetric record %+v", f)
			}
		case UDPFlood:
			if f.Proto != 17 || f.SrcPort < 32768 {
				t.Fatalf("udp flood record %+v", f)
			}
		case ICMPFlood:
			if f.Proto != 1 || f.ICMPType != 8 {
				t.Fatalf("icmp flood record %+v", f)
			}
		case FragmentFlood:
			if f.Proto != 17 || r.FragmentOffset == 0 || f.SrcPort != 0 {
				t.Fatalf("fragment record %+v offset %d", f, r.FragmentOffset)
			}
		case FlashCrowd:
			crowd[f.Src] = inbound && f.Proto != 47 || crowd[f.Src]
		case TrafficDrop:
			t.Fatalf("a traffic drop has no records: %+v", f)
		}
	}
	for i := 0; i < 4; i++ { // floods at 4x the inbound background of their subnet
		want := 4 * bulk[i].InPPS * 20
		if got := att[i]; math.Abs(got-want)/want > 0.1 {
			t.Errorf("%s: %.0f packets, want %.0f ±10%%", sc.Attacks[i].Name, got, want)
		}
	}
	if want := 2 * (bulk[4].InPPS + bulk[4].OutPPS) * 20; math.Abs(att[4]-want)/want > 0.1 {
		t.Errorf("flash crowd: %.0f extra packets, want %.0f (2× the background both ways)", att[4], want)
	}
	if len(crowd) < 1000 {
		t.Errorf("flash crowd from %d distinct clients, want many", len(crowd))
	}
	if want := 0.5 * bulk[6].OutPPS * 20; math.Abs(att[6]-want)/want > 0.15 {
		t.Errorf("scan: %.0f probes, want %.0f (0.5× the outbound background)", att[6], want)
	}
	for _, in := range []bool{true, false} {
		before, during := pk[key{5, in, false}], pk[key{5, in, true}]
		if r := during / before; r < 0.05 || r > 0.15 {
			t.Errorf("traffic drop inbound=%v: %.0f packets before, %.0f during (ratio %.2f, want 0.1)", in, before, during, r)
		}
	}
	labels := sc.Labels(live)
	var drops, crowds int
	for _, l := range labels {
		switch l.Kind {
		case TrafficDrop:
			drops++
		case FlashCrowd:
			crowds++
			if !l.Benign || l.Class != Benign {
				t.Errorf("flash crowd label %+v", l)
			}
		case UDPFlood:
			if math.Abs(l.Magnitude-4) > 1e-9 || l.Direction != "inbound" || l.Subnet != "198.19.1.0/24" || !l.End.Equal(live.Add(20*time.Second)) {
				t.Errorf("udp flood label %+v", l)
			}
		}
	}
	if drops != 2 || crowds != 2 {
		t.Errorf("%d drop and %d flash crowd labels, want one per direction", drops, crowds)
	}
}
