// Package scenario describes synthetic network traffic for Flowsentry: the
// exporters (routers) that report it, the customers and their subnets with
// baseline rates, and scripted attacks with start, duration and magnitude,
// each labelled with the incident the detector is expected to raise. A
// scenario is a YAML file (Load); Generator turns it into flow records as
// the routers would export them. The demo (benchmarks/cmd/demo) replays one
// end to end; labelled detection-quality runs can reuse the same files.
package scenario

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/packetworks/flowsentry/schemas/config"
)

// Scenario is the YAML file.
type Scenario struct {
	Name string `yaml:"name"`
	// Seed makes the traffic reproducible.
	Seed int64 `yaml:"seed"`
	// History is how much event time before the live start is generated
	// for the baselines to learn from (sent time-compressed).
	History time.Duration `yaml:"history"`
	// Tail is the longest live traffic continues after the last attack
	// ends (it has to, for the detector's windows to close and incidents
	// to end).
	Tail      time.Duration `yaml:"tail"`
	Diurnal   Diurnal       `yaml:"diurnal"`
	Noise     float64       `yaml:"noise"`
	Exporters []Exporter    `yaml:"exporters"`
	Customers []Customer    `yaml:"customers"`
	Attacks   []Attack      `yaml:"attacks"`
}

// Diurnal is the daily shape of every background rate: the configured rate
// is the daily mean; at PeakHour (UTC) it is mean*(1+Amplitude), twelve
// hours later mean*(1-Amplitude), a cosine in between.
type Diurnal struct {
	Amplitude float64 `yaml:"amplitude"`
	PeakHour  float64 `yaml:"peak_hour"`
}

// Exporter is a router that exports flows.
type Exporter struct {
	Name     string `yaml:"name"`
	Protocol string `yaml:"protocol"` // netflow9, ipfix or sflow
	// Address is the source address of its datagrams.
	Address string `yaml:"address"`
	// Sampling is 1-in-N packet sampling (1: every packet), announced in
	// options records (NetFlow v9, IPFIX) or in every sFlow sample.
	Sampling uint32 `yaml:"sampling"`
	addr     netip.Addr
}

// Protocols an exporter may speak.
const (
	NetFlow9 = "netflow9"
	IPFIX    = "ipfix"
	SFlow    = "sflow"
)

// Customer is a customer of the ISP with the subnets it uses.
type Customer struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Exporter names the router whose flows carry this customer's traffic.
	Exporter string   `yaml:"exporter"`
	Subnets  []Subnet `yaml:"subnets"`
	exporter int
}

// Subnet is one customer prefix and its normal traffic.
type Subnet struct {
	Prefix string `yaml:"prefix"`
	// Profile: "hosting" (servers the Internet connects to: small packets
	// in, large packets out) or "office" (hosts using Internet services:
	// requests out, large replies in).
	Profile string `yaml:"profile"`
	// Hosts active in the prefix (from the 10th address up).
	Hosts int `yaml:"hosts"`
	// InPPS and OutPPS are the daily mean packet rates (unsampled).
	InPPS  float64 `yaml:"in_pps"`
	OutPPS float64 `yaml:"out_pps"`
	prefix netip.Prefix
}

// Profiles of a subnet's traffic.
const (
	Hosting = "hosting"
	Office  = "office"
)

// Attack is one scripted attack and the incident it should raise.
type Attack struct {
	Name string `yaml:"name"`
	// Kind: syn_flood, amplification, carpet_bombing or scan (outbound,
	// from a customer host).
	Kind     string `yaml:"kind"`
	Customer string `yaml:"customer"`
	// Target: the victim address (syn_flood, amplification), the victim
	// prefix (carpet_bombing) or the scanning customer host (scan).
	Target string `yaml:"target"`
	// Port: the attacked port (syn_flood), the reflector's service port
	// (amplification, carpet_bombing; 0 = random), the probed port (scan).
	Port uint16 `yaml:"port"`
	// Start counts from the start of live traffic.
	Start    time.Duration `yaml:"start"`
	Duration time.Duration `yaml:"duration"`
	// PPS is the attack's packet rate (unsampled) and PacketSize its
	// packets' size in bytes (0: the kind's usual size).
	PPS        float64 `yaml:"pps"`
	PacketSize int     `yaml:"packet_size"`
	// Sources: distinct attacking addresses (spoofed sources, reflectors).
	Sources int    `yaml:"sources"`
	Expect  Expect `yaml:"expect"`

	customer int
	target   netip.Prefix // a host route for address targets
	subnet   netip.Prefix // the customer subnet holding the target
}

// Attack kinds.
const (
	SYNFlood      = "syn_flood"
	Amplification = "amplification"
	CarpetBombing = "carpet_bombing"
	Scan          = "scan"
)

// Expect is the label: the incident the detector should raise.
type Expect struct {
	// Class defaults to the kind's class (syn_flood, amplification,
	// carpet_bombing, scan).
	Class string `yaml:"class"`
	// Direction defaults to inbound (outbound for scan).
	Direction string `yaml:"direction"`
}

// Load reads and validates a scenario file.
func Load(path string) (*Scenario, error) {
	var s Scenario
	if err := config.Load(path, &s); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	return &s, nil
}

// Parse is Load for bytes already read.
func Parse(b []byte) (*Scenario, error) {
	var s Scenario
	if err := config.Decode(b, &s); err != nil {
		return nil, err
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Validate checks the scenario, resolves references and fills defaults;
// errors name the key.
func (s *Scenario) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if s.History < 0 {
		bad("history: %s must not be negative", s.History)
	}
	if s.Tail <= 0 {
		bad("tail: %s must be positive (live traffic must outlast the attacks for incidents to end)", s.Tail)
	}
	if s.Diurnal.Amplitude < 0 || s.Diurnal.Amplitude >= 1 {
		bad("diurnal.amplitude: %g is not in 0..1 (exclusive)", s.Diurnal.Amplitude)
	}
	if s.Diurnal.PeakHour < 0 || s.Diurnal.PeakHour >= 24 {
		bad("diurnal.peak_hour: %g is not in 0..24", s.Diurnal.PeakHour)
	}
	if s.Noise < 0 || s.Noise > 1 {
		bad("noise: %g is not in 0..1", s.Noise)
	}
	exporters := map[string]int{}
	for i := range s.Exporters {
		e := &s.Exporters[i]
		key := fmt.Sprintf("exporters[%d]", i)
		if e.Name == "" {
			bad("%s.name: required", key)
		} else if _, dup := exporters[e.Name]; dup {
			bad("%s.name: duplicate exporter %q", key, e.Name)
		}
		exporters[e.Name] = i
		switch e.Protocol {
		case NetFlow9, IPFIX, SFlow:
		default:
			bad("%s.protocol: %q is not netflow9, ipfix or sflow", key, e.Protocol)
		}
		a, err := netip.ParseAddr(e.Address)
		if err != nil {
			bad("%s.address: %v", key, err)
		}
		e.addr = a
		if e.Sampling < 1 {
			bad("%s.sampling: must be >= 1 (1 = every packet)", key)
		}
	}
	if len(s.Exporters) == 0 {
		bad("exporters: at least one exporter is required")
	}
	customers := map[string]int{}
	var all []netip.Prefix
	for i := range s.Customers {
		c := &s.Customers[i]
		key := fmt.Sprintf("customers[%d]", i)
		if c.ID == "" {
			bad("%s.id: required", key)
		} else if _, dup := customers[c.ID]; dup {
			bad("%s.id: duplicate customer %q", key, c.ID)
		}
		customers[c.ID] = i
		var ok bool
		if c.exporter, ok = exporters[c.Exporter]; !ok {
			bad("%s.exporter: no exporter named %q", key, c.Exporter)
		}
		if len(c.Subnets) == 0 {
			bad("%s.subnets: at least one subnet is required", key)
		}
		for j := range c.Subnets {
			sn := &c.Subnets[j]
			skey := fmt.Sprintf("%s.subnets[%d]", key, j)
			p, err := netip.ParsePrefix(sn.Prefix)
			switch {
			case err != nil:
				bad("%s.prefix: %v", skey, err)
			case p.Masked() != p:
				bad("%s.prefix: %s has host bits set", skey, sn.Prefix)
			default:
				for _, q := range all {
					if q.Overlaps(p) {
						bad("%s.prefix: %s overlaps %s", skey, p, q)
					}
				}
				all = append(all, p)
			}
			sn.prefix = p
			switch sn.Profile {
			case Hosting, Office:
			default:
				bad("%s.profile: %q is not hosting or office", skey, sn.Profile)
			}
			if sn.Hosts < 1 {
				bad("%s.hosts: must be >= 1", skey)
			} else if err == nil && p.Addr().BitLen()-p.Bits() < 16 && sn.Hosts+10 > 1<<(p.Addr().BitLen()-p.Bits()) {
				bad("%s.hosts: %d hosts (from the 10th address) do not fit in %s", skey, sn.Hosts, p)
			}
			if sn.InPPS < 0 || sn.OutPPS < 0 {
				bad("%s: in_pps and out_pps must not be negative", skey)
			}
		}
	}
	for i := range s.Attacks {
		a := &s.Attacks[i]
		key := fmt.Sprintf("attacks[%d]", i)
		if a.Name == "" {
			a.Name = fmt.Sprintf("%s-%d", a.Kind, i+1)
		}
		switch a.Kind {
		case SYNFlood, Amplification, CarpetBombing, Scan:
		default:
			bad("%s.kind: %q is not syn_flood, amplification, carpet_bombing or scan", key, a.Kind)
		}
		ci, ok := customers[a.Customer]
		if !ok {
			bad("%s.customer: no customer %q", key, a.Customer)
		}
		a.customer = ci
		if a.Kind == CarpetBombing {
			p, err := netip.ParsePrefix(a.Target)
			if err != nil {
				bad("%s.target: carpet_bombing needs a prefix: %v", key, err)
			}
			a.target = p.Masked()
		} else {
			ad, err := netip.ParseAddr(a.Target)
			if err != nil {
				bad("%s.target: %v", key, err)
			}
			a.target = netip.PrefixFrom(ad, ad.BitLen())
		}
		if ok && a.target.IsValid() {
			for _, sn := range s.Customers[ci].Subnets {
				if sn.prefix.IsValid() && sn.prefix.Contains(a.target.Addr()) && sn.prefix.Bits() <= a.target.Bits() {
					a.subnet = sn.prefix
				}
			}
			if !a.subnet.IsValid() {
				bad("%s.target: %s is not inside a subnet of customer %q", key, a.Target, a.Customer)
			}
		}
		if a.Start < 0 {
			bad("%s.start: must not be negative", key)
		}
		if a.Duration <= 0 {
			bad("%s.duration: must be positive", key)
		}
		if a.PPS <= 0 {
			bad("%s.pps: must be positive", key)
		}
		if a.Kind != Scan && a.Sources < 1 {
			bad("%s.sources: must be >= 1", key)
		}
		if a.PacketSize < 0 || a.PacketSize > 9000 {
			bad("%s.packet_size: %d is not in 0..9000", key, a.PacketSize)
		}
		if (a.Kind == SYNFlood || a.Kind == Scan) && a.Port == 0 {
			bad("%s.port: required for %s", key, a.Kind)
		}
		if a.Expect.Class == "" {
			a.Expect.Class = a.Kind
		}
		if a.Expect.Direction == "" {
			a.Expect.Direction = "inbound"
			if a.Kind == Scan {
				a.Expect.Direction = "outbound"
			}
		}
		if a.Expect.Direction != "inbound" && a.Expect.Direction != "outbound" {
			bad("%s.expect.direction: %q is not inbound or outbound", key, a.Expect.Direction)
		}
	}
	return errors.Join(errs...)
}

// Subnet returns the customer subnet the attack targets (its incident's
// subnet key, when the inventory lists the same prefixes).
func (a *Attack) Subnet() netip.Prefix { return a.subnet }

// TargetPrefix is the attacked host (as a host route) or prefix.
func (a *Attack) TargetPrefix() netip.Prefix { return a.target }

// End is when the attack stops, counted like Start.
func (a *Attack) End() time.Duration { return a.Start + a.Duration }

// LastEnd is when the last attack stops, counted from the live start.
func (s *Scenario) LastEnd() time.Duration {
	var d time.Duration
	for i := range s.Attacks {
		d = max(d, s.Attacks[i].End())
	}
	return d
}

// ExporterAddr is the validated source address of exporter i.
func (s *Scenario) ExporterAddr(i int) netip.Addr { return s.Exporters[i].addr }

// CustomerOf returns the customer owning addr, or nil.
func (s *Scenario) CustomerOf(addr netip.Addr) *Customer {
	for i := range s.Customers {
		if slices.ContainsFunc(s.Customers[i].Subnets, func(sn Subnet) bool { return sn.prefix.Contains(addr) }) {
			return &s.Customers[i]
		}
	}
	return nil
}

// ParsedPrefix is the validated prefix.
func (sn *Subnet) ParsedPrefix() netip.Prefix { return sn.prefix }

// ExporterIndex is the index of the customer's exporter.
func (c *Customer) ExporterIndex() int { return c.exporter }
