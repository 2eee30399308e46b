package scenario

import (
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const base = `
name: t
seed: 1
history: 1m
tail: 30s
diurnal: {amplitude: 0.3, peak_hour: 20}
noise: 0
exporters:
  - {name: r1, protocol: netflow9, address: 127.0.0.1, sampling: 100}
  - {name: r2, protocol: sflow, address: 127.0.0.2, sampling: 10}
  - {name: r3, protocol: ipfix, address: 127.0.0.3, sampling: 1}
customers:
  - id: a
    exporter: r1
    subnets:
      - {prefix: 198.18.10.0/24, profile: hosting, hosts: 4, in_pps: 20000, out_pps: 30000}
      - {prefix: "2001:db8:a::/48", profile: hosting, hosts: 2, in_pps: 5000, out_pps: 5000}
  - id: b
    exporter: r2
    subnets:
      - {prefix: 198.18.20.0/24, profile: hosting, hosts: 4, in_pps: 2000, out_pps: 3000}
  - id: c
    exporter: r3
    subnets:
      - {prefix: 198.18.40.0/24, profile: office, hosts: 20, in_pps: 2000, out_pps: 1000}
`

func TestValidateNamesTheKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown key", base + "bogus: 1\n", "field bogus not found"},
		{"protocol", strings.Replace(base, "protocol: sflow", "protocol: netflow5", 1), "exporters[1].protocol"},
		{"sampling", strings.Replace(base, "sampling: 10}", "sampling: 0}", 1), "exporters[1].sampling"},
		{"exporter ref", strings.Replace(base, "exporter: r2", "exporter: r9", 1), "customers[1].exporter"},
		{"host bits", strings.Replace(base, "198.18.20.0/24", "198.18.20.1/24", 1), "customers[1].subnets[0].prefix"},
		{"overlap", strings.Replace(base, "198.18.20.0/24", "198.18.10.0/25", 1), "overlaps"},
		{"profile", strings.Replace(base, "profile: office", "profile: isp", 1), "customers[2].subnets[0].profile"},
		{"tail", strings.Replace(base, "tail: 30s", "tail: 0s", 1), "tail:"},
		{"attack kind", base + "attacks: [{kind: ping, customer: a, target: 198.18.10.10, start: 1s, duration: 1s, pps: 1, sources: 1}]\n", "attacks[0].kind"},
		{"attack target outside", base + "attacks: [{kind: syn_flood, customer: a, target: 198.18.20.10, port: 80, start: 1s, duration: 1s, pps: 1, sources: 1}]\n", "attacks[0].target"},
		{"carpet needs prefix", base + "attacks: [{kind: carpet_bombing, customer: a, target: 198.18.10.10, start: 1s, duration: 1s, pps: 1, sources: 1}]\n", "attacks[0].target: carpet_bombing needs a prefix"},
		{"syn port", base + "attacks: [{kind: syn_flood, customer: a, target: 198.18.10.10, start: 1s, duration: 1s, pps: 1, sources: 1}]\n", "attacks[0].port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if _, err := Parse([]byte(base)); err != nil {
		t.Fatalf("valid scenario refused: %v", err)
	}
}

func TestDemoScenarioIsValid(t *testing.T) {
	sc, err := Load("../../deploy/demo/scenario.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"syn_flood": "inbound", "amplification": "inbound", "carpet_bombing": "inbound", "scan": "outbound"}
	if len(sc.Attacks) != len(want) {
		t.Fatalf("%d attacks, want %d", len(sc.Attacks), len(want))
	}
	for _, a := range sc.Attacks {
		if want[a.Expect.Class] != a.Expect.Direction {
			t.Errorf("%s: expect %s %s", a.Name, a.Expect.Class, a.Expect.Direction)
		}
		if !a.Subnet().IsValid() {
			t.Errorf("%s: no subnet", a.Name)
		}
	}
}

// sampledPackets sums the exporter-side packet counts of background
// records per customer and direction (InIf 1 = inbound).
func generate(t *testing.T, sc *Scenario, from time.Time, d time.Duration) []Record {
	t.Helper()
	g := NewGenerator(sc)
	var out []Record
	for c := from; c.Before(from.Add(d)); c = c.Add(time.Second) {
		out = g.Step(c, c.Add(time.Second), out)
	}
	return out
}

func TestBackgroundRatesFollowTheScenario(t *testing.T) {
	sc, err := Parse([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 1, 5, 20, 0, 0, 0, time.UTC) // the diurnal peak: rate x1.3
	recs := generate(t, sc, from, 5*time.Minute)
	type key struct {
		prefix  string
		inbound bool
	}
	got := map[key]float64{}
	for _, r := range recs {
		if r.Attack != -1 {
			t.Fatalf("attack record before StartLive: %+v", r)
		}
		inbound := r.Flow.InIf == 1
		local := r.Flow.Dst
		if !inbound {
			local = r.Flow.Src
		}
		c := sc.CustomerOf(local)
		if c == nil {
			t.Fatalf("record without a customer address: %+v", r.Flow)
		}
		for _, sn := range c.Subnets {
			if sn.ParsedPrefix().Contains(local) {
				got[key{sn.Prefix, inbound}] += float64(r.Flow.Packets) * float64(sc.Exporters[r.Exporter].Sampling)
			}
		}
		if sc.Exporters[r.Exporter].Protocol == SFlow && r.Flow.Packets != 1 {
			t.Fatalf("sFlow record with %d packets: one sample is one packet", r.Flow.Packets)
		}
	}
	for _, c := range sc.Customers {
		for _, sn := range c.Subnets {
			for _, in := range []bool{true, false} {
				want := sn.OutPPS
				if in {
					want = sn.InPPS
				}
				want *= 1.3
				pps := got[key{sn.Prefix, in}] / 300
				if math.Abs(pps-want)/want > 0.06 {
					t.Errorf("%s inbound=%v: %.0f pps, want %.0f ±6%%", sn.Prefix, in, pps, want)
				}
			}
		}
	}
}

func TestDeterministic(t *testing.T) {
	sc, _ := Parse([]byte(base))
	from := time.Date(2026, 1, 5, 3, 0, 0, 0, time.UTC)
	a, b := generate(t, sc, from, 20*time.Second), generate(t, sc, from, 20*time.Second)
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("%d and %d records", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("record %d differs: %+v vs %+v", i, a[i], b[i])
		}
	}
}

func TestAttacks(t *testing.T) {
	attacks := `attacks:
  - {name: syn, kind: syn_flood, customer: a, target: "2001:db8:a::10", port: 443, start: 2s, duration: 4s, pps: 100000, sources: 500}
  - {name: amp, kind: amplification, customer: b, target: 198.18.20.12, port: 123, start: 2s, duration: 4s, pps: 20000, packet_size: 468, sources: 50}
  - {name: carpet, kind: carpet_bombing, customer: a, target: 198.18.10.0/24, port: 53, start: 2s, duration: 4s, pps: 100000, sources: 300}
  - {name: scan, kind: scan, customer: c, target: 198.18.40.23, port: 23, start: 2s, duration: 4s, pps: 200}
`
	sc, err := Parse([]byte(base + attacks))
	if err != nil {
		t.Fatal(err)
	}
	live := time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)
	g := NewGenerator(sc)
	if recs := g.Step(live, live.Add(10*time.Second), nil); countAttack(recs) != 0 {
		t.Fatal("attacks generated before StartLive")
	}
	g.StartLive(live)
	var recs []Record
	for c := live; c.Before(live.Add(10 * time.Second)); c = c.Add(200 * time.Millisecond) {
		recs = g.Step(c, c.Add(200*time.Millisecond), recs)
	}
	dsts := map[int]map[netip.Addr]bool{}
	n := map[int]float64{}
	for _, r := range recs {
		if r.Attack < 0 {
			continue
		}
		a := &sc.Attacks[r.Attack]
		f := r.Flow
		if f.End.Before(live.Add(a.Start)) || !f.End.Before(live.Add(a.End())) {
			t.Fatalf("%s: record at %s outside the attack", a.Name, f.End.Sub(live))
		}
		if dsts[r.Attack] == nil {
			dsts[r.Attack] = map[netip.Addr]bool{}
		}
		dsts[r.Attack][f.Dst] = true
		n[r.Attack] += float64(f.Packets) * float64(sc.Exporters[r.Exporter].Sampling)
		switch a.Kind {
		case SYNFlood:
			if f.Proto != 6 || f.TCPFlags != 0x02 || f.Dst != netip.MustParseAddr("2001:db8:a::10") || f.DstPort != 443 {
				t.Fatalf("syn flood record %+v", f)
			}
		case Amplification:
			if f.Proto != 17 || f.SrcPort != 123 || f.Dst != netip.MustParseAddr("198.18.20.12") || f.Bytes != 468 {
				t.Fatalf("amplification record %+v", f)
			}
		case CarpetBombing:
			if !netip.MustParsePrefix("198.18.10.0/24").Contains(f.Dst) || f.Proto != 17 {
				t.Fatalf("carpet record %+v", f)
			}
		case Scan:
			if f.Src != netip.MustParseAddr("198.18.40.23") || f.DstPort != 23 || f.Packets != 1 || f.InIf != 2 ||
				sc.CustomerOf(f.Dst) != nil {
				t.Fatalf("scan record %+v", f)
			}
		}
	}
	for i, a := range sc.Attacks {
		if pps := n[i] / a.Duration.Seconds(); math.Abs(pps-a.PPS)/a.PPS > 0.1 {
			t.Errorf("%s: %.0f pps, want %.0f ±10%%", a.Name, pps, a.PPS)
		}
	}
	if d := len(dsts[2]); d < 200 {
		t.Errorf("carpet bombing hit %d addresses of the /24, want most of them", d)
	}
	if d := len(dsts[3]); d < 700 {
		t.Errorf("scan probed %d destinations in 4 s at 200 pps, want about 800", d)
	}
}

func countAttack(recs []Record) int {
	n := 0
	for _, r := range recs {
		if r.Attack >= 0 {
			n++
		}
	}
	return n
}
