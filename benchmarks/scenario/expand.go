package scenario

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	mbits "math/bits"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Range is a value drawn per generated item: a scalar (fixed) or
// [min, max] in YAML.
type Range struct {
	Min, Max float64
	set      bool
}

// UnmarshalYAML accepts 5 or [1, 9].
func (r *Range) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		v, err := strconv.ParseFloat(n.Value, 64)
		if err != nil {
			return fmt.Errorf("line %d: %q is not a number", n.Line, n.Value)
		}
		*r = Range{v, v, true}
		return nil
	case yaml.SequenceNode:
		var v []float64
		if err := n.Decode(&v); err != nil || len(v) != 2 {
			return fmt.Errorf("line %d: want a number or [min, max]", n.Line)
		}
		*r = Range{v[0], v[1], true}
		return nil
	}
	return fmt.Errorf("line %d: want a number or [min, max]", n.Line)
}

// Set reports whether the key was given.
func (r Range) Set() bool { return r.set }

func (r Range) check(key string, lo, hi float64) error {
	if r.Min > r.Max || r.Min < lo || r.Max > hi {
		return fmt.Errorf("%s: [%g, %g] is not an ordered range within %g..%g", key, r.Min, r.Max, lo, hi)
	}
	return nil
}

// uniform draws in [Min, Max].
func (r Range) uniform(rng *rand.Rand) float64 { return r.Min + rng.Float64()*(r.Max-r.Min) }

// logUniform draws in [Min, Max] evenly in the log (rates span decades).
func (r Range) logUniform(rng *rand.Rand) float64 {
	if r.Min <= 0 || r.Min == r.Max {
		return r.uniform(rng)
	}
	return math.Exp(math.Log(r.Min) + rng.Float64()*(math.Log(r.Max)-math.Log(r.Min)))
}

// SubnetTemplate generates Count subnets carved in order out of Prefix.
type SubnetTemplate struct {
	Count  int    `yaml:"count"`
	Prefix string `yaml:"prefix"`
	// Bits is the generated subnets' prefix length (default /24, /48).
	Bits int `yaml:"bits"`
	// Profile: hosting, office or mixed (each subnet draws one).
	Profile string `yaml:"profile"`
	Hosts   Range  `yaml:"hosts"`
	// InPPS and OutPPS are drawn log-uniformly; PeakHour uniformly
	// (default: the scenario's diurnal.peak_hour).
	InPPS    Range `yaml:"in_pps"`
	OutPPS   Range `yaml:"out_pps"`
	PeakHour Range `yaml:"peak_hour"`
}

// expandSubnets appends c.SubnetsFrom's subnets to c.Subnets.
func (s *Scenario) expandSubnets(c *Customer, key string) error {
	t := c.SubnetsFrom
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(key+"."+format, a...)) }
	p, err := netip.ParsePrefix(t.Prefix)
	if err != nil {
		bad("prefix: %v", err)
		return errors.Join(errs...)
	}
	if t.Bits == 0 {
		t.Bits = 24
		if p.Addr().Is6() {
			t.Bits = 48
		}
	}
	if t.Bits < p.Bits() || t.Bits > p.Addr().BitLen() {
		bad("bits: /%d does not fit in %s", t.Bits, p)
	} else if room := t.Bits - p.Bits(); t.Count < 1 || (room < 30 && t.Count > 1<<room) {
		bad("count: %d subnets of /%d do not fit in %s (or count < 1)", t.Count, t.Bits, p)
	}
	switch t.Profile {
	case Hosting, Office, "mixed":
	default:
		bad("profile: %q is not hosting, office or mixed", t.Profile)
	}
	if !t.Hosts.set {
		t.Hosts = Range{8, 8, true}
	}
	for _, r := range []struct {
		name   string
		r      Range
		lo, hi float64
	}{{"hosts", t.Hosts, 1, 60000}, {"in_pps", t.InPPS, 0, 1e9}, {"out_pps", t.OutPPS, 0, 1e9}, {"peak_hour", t.PeakHour, 0, 24}} {
		if r.name != "peak_hour" && !r.r.set {
			bad("%s: required", r.name)
		} else if err := r.r.check(key+"."+r.name, r.lo, r.hi); r.r.set && err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// Its own stream: adding a template never changes the traffic drawn.
	h := fnv.New64a()
	h.Write([]byte(c.ID))
	rng := rand.New(rand.NewPCG(uint64(s.Seed), h.Sum64()))
	base := p.Masked().Addr()
	for i := range t.Count {
		sn := Subnet{Prefix: netip.PrefixFrom(nthSubnet(base, t.Bits, i), t.Bits).String(), Profile: t.Profile,
			Hosts: int(math.Round(t.Hosts.uniform(rng))), InPPS: math.Round(t.InPPS.logUniform(rng)), OutPPS: math.Round(t.OutPPS.logUniform(rng))}
		if t.Profile == "mixed" {
			sn.Profile = Hosting
			if rng.IntN(3) == 0 {
				sn.Profile = Office
			}
		}
		if t.PeakHour.set {
			h := t.PeakHour.uniform(rng)
			sn.PeakHour = &h
		}
		c.Subnets = append(c.Subnets, sn)
	}
	return nil
}

// nthSubnet returns the address of the i-th /bits subnet from base.
func nthSubnet(base netip.Addr, bits, i int) netip.Addr {
	be := binary.BigEndian
	if base.Is4() {
		b := base.As4()
		be.PutUint32(b[:], be.Uint32(b[:])+uint32(i)<<(32-bits))
		return netip.AddrFrom4(b)
	}
	b := base.As16()
	hi, lo := be.Uint64(b[:8]), be.Uint64(b[8:])
	switch shift := 128 - bits; {
	case shift >= 64:
		hi += uint64(i) << (shift - 64)
	case shift == 0:
		lo += uint64(i)
	default:
		var c uint64
		lo, c = mbits.Add64(lo, uint64(i)<<shift, 0)
		hi += c + uint64(i)>>(64-shift)
	}
	be.PutUint64(b[:8], hi)
	be.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b)
}

// Sweep is a family of attacks of one kind: one per magnitude (or level)
// and duration, each on its own subnet of the customer, from FirstSubnet
// on, starting Spacing apart.
type Sweep struct {
	Kind        string          `yaml:"kind"`
	Customer    string          `yaml:"customer"`
	FirstSubnet int             `yaml:"first_subnet"`
	Magnitudes  []float64       `yaml:"magnitudes"`
	Levels      []float64       `yaml:"levels"` // traffic_drop, maintenance
	Durations   []time.Duration `yaml:"durations"`
	Start       time.Duration   `yaml:"start"`
	Spacing     time.Duration   `yaml:"spacing"`
	Port        uint16          `yaml:"port"`
	PacketSize  int             `yaml:"packet_size"`
	Sources     int             `yaml:"sources"`
	Expect      Expect          `yaml:"expect"`
}

// expandSweeps appends every sweep's attacks to s.Attacks (validated with
// them, so their errors name attacks[i]; sweep errors name sweeps[i]).
func (s *Scenario) expandSweeps() error {
	var errs []error
	for i, sw := range s.Sweeps {
		key := fmt.Sprintf("sweeps[%d]", i)
		dip := sw.Kind == TrafficDrop || sw.Kind == Maintenance
		sizes := sw.Magnitudes
		switch {
		case dip && len(sw.Magnitudes) > 0:
			errs = append(errs, fmt.Errorf("%s.magnitudes: %s sweeps take levels", key, sw.Kind))
		case dip:
			sizes = sw.Levels
		case len(sw.Levels) > 0:
			errs = append(errs, fmt.Errorf("%s.levels: only for traffic_drop and maintenance", key))
		}
		if len(sizes) == 0 {
			errs = append(errs, fmt.Errorf("%s.magnitudes: at least one magnitude (levels for dips) is required", key))
			continue
		}
		durs := sw.Durations
		if len(durs) == 0 {
			durs = []time.Duration{30 * time.Second}
		}
		if sw.FirstSubnet < 0 {
			errs = append(errs, fmt.Errorf("%s.first_subnet: must not be negative", key))
			continue
		}
		n := 0
		for _, d := range durs {
			for _, x := range sizes {
				sub := sw.FirstSubnet + n
				a := Attack{Name: fmt.Sprintf("%s-%s-%g-%s", sw.Kind, sw.Customer, x, d), Kind: sw.Kind, Customer: sw.Customer,
					SubnetIndex: &sub, Port: sw.Port, Start: sw.Start + time.Duration(n)*sw.Spacing, Duration: d,
					PacketSize: sw.PacketSize, Sources: sw.Sources, Expect: sw.Expect}
				if dip {
					lv := x
					a.Level = &lv
				} else {
					a.Magnitude = x
				}
				s.Attacks = append(s.Attacks, a)
				n++
			}
		}
	}
	return errors.Join(errs...)
}
