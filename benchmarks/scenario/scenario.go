// Package scenario describes synthetic network traffic for Flowsentry: the
// exporters (routers) that report it, the customers and their subnets with
// baseline rates (with daily and weekly shapes, or generated from a
// template), and scripted events — attacks of every detector class,
// outages, benign flash crowds and maintenance dips — with start, duration
// and magnitude (absolute or relative to the subnet's background), each
// labelled with the incident the detector should raise (Labels). A
// scenario is a YAML file (Load); Generator turns it into flow records as
// the routers would export them. The demo (benchmarks/cmd/demo) replays
// one end to end; benchmarks/quality scores labelled runs.
package scenario

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
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
	Tail    time.Duration `yaml:"tail"`
	Diurnal Diurnal       `yaml:"diurnal"`
	// Weekly multiplies every background rate by a factor per day, Monday
	// first (7 values; empty: flat), linear between the days' noons (UTC)
	// so that a weekend arrives as a ramp, not a step.
	Weekly    []float64  `yaml:"weekly"`
	Noise     float64    `yaml:"noise"`
	Exporters []Exporter `yaml:"exporters"`
	Customers []Customer `yaml:"customers"`
	Attacks   []Attack   `yaml:"attacks"`
	// Sweeps are families of attacks (kind × magnitudes × durations), one
	// per subnet, expanded into Attacks by Validate.
	Sweeps []Sweep `yaml:"sweeps"`

	expanded bool
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
	// SubnetsFrom generates many subnets from a template (appended to
	// Subnets by Validate, drawn with the scenario's seed).
	SubnetsFrom *SubnetTemplate `yaml:"subnets_from"`
	exporter    int
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
	// PeakHour overrides diurnal.peak_hour for this subnet (customers in
	// other time zones, business vs residential).
	PeakHour *float64 `yaml:"peak_hour"`
	prefix   netip.Prefix
	dips     []int // traffic_drop and maintenance attacks on this subnet
}

// Profiles of a subnet's traffic.
const (
	Hosting = "hosting"
	Office  = "office"
)

// Attack is one scripted event — an attack, an outage, or a benign surge
// or dip — and the label of what it is.
type Attack struct {
	Name string `yaml:"name"`
	// Kind: an attack (volumetric, syn_flood, udp_flood, icmp_flood,
	// fragment_flood, amplification, carpet_bombing, scan: outbound, from
	// a customer host), an outage (traffic_drop), or a benign event
	// (flash_crowd: legitimate surge, maintenance: partial dip).
	Kind     string `yaml:"kind"`
	Customer string `yaml:"customer"`
	// Target: the victim address (floods), the victim prefix
	// (carpet_bombing), the scanning customer host (scan) or the subnet
	// (traffic_drop, flash_crowd, maintenance). Optional with Subnet.
	Target string `yaml:"target"`
	// SubnetIndex (key subnet): index of the customer's subnet (after subnets_from) as an
	// alternative to Target: its first active host, or the whole prefix
	// for carpet_bombing and the subnet-wide kinds.
	SubnetIndex *int `yaml:"subnet"`
	// Port: the attacked port (syn_flood), the reflector's service port
	// (amplification, carpet_bombing; 0 = random), the probed port (scan).
	Port uint16 `yaml:"port"`
	// Start counts from the start of live traffic.
	Start    time.Duration `yaml:"start"`
	Duration time.Duration `yaml:"duration"`
	// PPS is the attack's packet rate (unsampled); Magnitude is the
	// alternative: that many times the subnet's background packet rate in
	// the attacked direction at each moment (daily and weekly shape, no
	// noise). A flash crowd's magnitude is the total over the background.
	// PacketSize is the packets' size in bytes (0: the kind's usual size).
	PPS        float64 `yaml:"pps"`
	Magnitude  float64 `yaml:"magnitude"`
	PacketSize int     `yaml:"packet_size"`
	// Level: the share of background traffic left during a traffic_drop
	// (default 0) or maintenance (default 0.5).
	Level *float64 `yaml:"level"`
	// Sources: distinct attacking addresses (spoofed sources, reflectors),
	// or a flash crowd's distinct clients.
	Sources int    `yaml:"sources"`
	Expect  Expect `yaml:"expect"`

	customer  int
	subnetIdx int
	target    netip.Prefix // a host route for address targets
	subnet    netip.Prefix // the customer subnet holding the target
}

// Attack kinds.
const (
	Volumetric    = "volumetric"
	SYNFlood      = "syn_flood"
	UDPFlood      = "udp_flood"
	ICMPFlood     = "icmp_flood"
	FragmentFlood = "fragment_flood"
	Amplification = "amplification"
	CarpetBombing = "carpet_bombing"
	Scan          = "scan"
	TrafficDrop   = "traffic_drop"
	FlashCrowd    = "flash_crowd"
	Maintenance   = "maintenance"
)

// Kinds lists every kind in the order of the detector's classes, benign
// kinds last.
var Kinds = []string{Volumetric, SYNFlood, UDPFlood, ICMPFlood, FragmentFlood, Amplification, CarpetBombing, Scan,
	TrafficDrop, FlashCrowd, Maintenance}

// Benign is the class label of legitimate events: no incident is wanted.
const Benign = "none"

// IsBenign reports whether a kind is legitimate traffic.
func IsBenign(kind string) bool { return kind == FlashCrowd || kind == Maintenance }

// subnetWide kinds act on a whole subnet's background traffic.
func subnetWide(kind string) bool {
	return kind == TrafficDrop || kind == FlashCrowd || kind == Maintenance
}

// Expect is the label: the incident the detector should raise.
type Expect struct {
	// Class defaults to the kind's class; "none" for benign kinds.
	Class string `yaml:"class"`
	// Direction defaults to inbound (outbound for scan; both for
	// traffic_drop, flash_crowd and maintenance).
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
		if c.SubnetsFrom != nil && !s.expanded {
			errs = append(errs, s.expandSubnets(c, key+".subnets_from"))
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
			if sn.PeakHour != nil && (*sn.PeakHour < 0 || *sn.PeakHour >= 24) {
				bad("%s.peak_hour: %g is not in 0..24", skey, *sn.PeakHour)
			}
			sn.dips = nil
		}
	}
	for i, x := range s.Weekly {
		if x <= 0 || x > 10 {
			bad("weekly[%d]: %g is not in (0, 10]", i, x)
		}
	}
	if n := len(s.Weekly); n != 0 && n != 7 {
		bad("weekly: %d values, want 7 (Monday first) or none", n)
	}
	if !s.expanded {
		errs = append(errs, s.expandSweeps())
	}
	for i := range s.Attacks {
		s.validateAttack(i, customers, bad)
	}
	s.expanded = true
	return errors.Join(errs...)
}

// validateAttack checks attack i, resolves its target and fills defaults.
func (s *Scenario) validateAttack(i int, customers map[string]int, bad func(string, ...any)) {
	a := &s.Attacks[i]
	key := fmt.Sprintf("attacks[%d]", i)
	if a.Name == "" {
		a.Name = fmt.Sprintf("%s-%d", a.Kind, i+1)
	}
	if !slices.Contains(Kinds, a.Kind) {
		bad("%s.kind: %q is not one of %s", key, a.Kind, strings.Join(Kinds, ", "))
	}
	ci, ok := customers[a.Customer]
	if !ok {
		bad("%s.customer: no customer %q", key, a.Customer)
	}
	a.customer = ci
	wide := subnetWide(a.Kind) || a.Kind == CarpetBombing
	switch {
	case a.SubnetIndex != nil && a.Target != "":
		bad("%s.target: give target or subnet, not both", key)
	case a.SubnetIndex != nil:
		if !ok {
			break
		}
		if n := len(s.Customers[ci].Subnets); *a.SubnetIndex < 0 || *a.SubnetIndex >= n {
			bad("%s.subnet: %d is not a subnet index of customer %q (it has %d)", key, *a.SubnetIndex, a.Customer, n)
			break
		}
		p := s.Customers[ci].Subnets[*a.SubnetIndex].prefix
		a.target = p
		if !wide {
			h := host(p, 0)
			a.target = netip.PrefixFrom(h, h.BitLen())
		}
	case wide:
		p, err := netip.ParsePrefix(a.Target)
		if err != nil {
			bad("%s.target: %s needs a prefix: %v", key, a.Kind, err)
		}
		a.target = p.Masked()
	default:
		ad, err := netip.ParseAddr(a.Target)
		if err != nil {
			bad("%s.target: %v", key, err)
		}
		a.target = netip.PrefixFrom(ad, ad.BitLen())
	}
	if ok && a.target.IsValid() {
		for j, sn := range s.Customers[ci].Subnets {
			if sn.prefix.IsValid() && sn.prefix.Contains(a.target.Addr()) && sn.prefix.Bits() <= a.target.Bits() {
				a.subnet, a.subnetIdx = sn.prefix, j
			}
		}
		if !a.subnet.IsValid() {
			bad("%s.target: %s is not inside a subnet of customer %q", key, a.target, a.Customer)
		} else if subnetWide(a.Kind) && a.target != a.subnet {
			bad("%s.target: %s acts on a whole subnet: give the subnet %s", key, a.Kind, a.subnet)
		}
	}
	if a.Start < 0 {
		bad("%s.start: must not be negative", key)
	}
	if a.Duration <= 0 {
		bad("%s.duration: must be positive", key)
	}
	dip := a.Kind == TrafficDrop || a.Kind == Maintenance
	switch {
	case dip && (a.PPS != 0 || a.Magnitude != 0):
		bad("%s.pps: %s has no rate of its own (use level)", key, a.Kind)
	case dip:
	case a.PPS < 0 || a.Magnitude < 0:
		bad("%s.pps: pps and magnitude must not be negative", key)
	case a.PPS > 0 && a.Magnitude > 0:
		bad("%s.magnitude: give pps or magnitude, not both", key)
	case a.PPS == 0 && a.Magnitude == 0:
		bad("%s.pps: pps or magnitude is required", key)
	case a.Kind == FlashCrowd && a.PPS > 0:
		bad("%s.pps: a flash_crowd is sized by magnitude (times the background)", key)
	case a.Kind == FlashCrowd && a.Magnitude <= 1:
		bad("%s.magnitude: %g: a flash crowd is more than the background (> 1)", key, a.Magnitude)
	}
	if a.Level != nil && !dip {
		bad("%s.level: only for traffic_drop and maintenance", key)
	}
	if a.Level == nil && dip {
		lv := 0.0
		if a.Kind == Maintenance {
			lv = 0.5
		}
		a.Level = &lv
	}
	if a.Level != nil && (*a.Level < 0 || *a.Level >= 1) {
		bad("%s.level: %g is not in 0..1 (exclusive)", key, *a.Level)
	}
	if a.Kind == FlashCrowd && a.Sources == 0 {
		a.Sources = 5000
	}
	if !dip && a.Kind != Scan && a.Sources < 1 {
		bad("%s.sources: must be >= 1", key)
	}
	if a.PacketSize < 0 || a.PacketSize > 9000 {
		bad("%s.packet_size: %d is not in 0..9000", key, a.PacketSize)
	}
	if (a.Kind == SYNFlood || a.Kind == Scan) && a.Port == 0 {
		bad("%s.port: required for %s", key, a.Kind)
	}
	if a.Kind == FragmentFlood && a.target.IsValid() && !a.target.Addr().Is4() {
		bad("%s.target: fragment_flood is generated for IPv4 targets only", key)
	}
	switch {
	case IsBenign(a.Kind) && a.Expect.Class != "" && a.Expect.Class != Benign:
		bad("%s.expect.class: %s is benign: the class is %q", key, a.Kind, Benign)
	case IsBenign(a.Kind):
		a.Expect.Class = Benign
	case a.Expect.Class == "":
		a.Expect.Class = a.Kind
	}
	if a.Expect.Direction == "" {
		switch {
		case a.Kind == Scan:
			a.Expect.Direction = "outbound"
		case subnetWide(a.Kind):
			a.Expect.Direction = "both"
		default:
			a.Expect.Direction = "inbound"
		}
	}
	switch d := a.Expect.Direction; {
	case d == "inbound" || d == "outbound":
	case d == "both" && subnetWide(a.Kind):
	default:
		bad("%s.expect.direction: %q is not inbound or outbound (or both, for subnet-wide kinds)", key, d)
	}
	if ok && a.subnet.IsValid() && (a.Kind == TrafficDrop || a.Kind == Maintenance) {
		sn := &s.Customers[ci].Subnets[a.subnetIdx]
		if !slices.Contains(sn.dips, i) {
			sn.dips = append(sn.dips, i)
		}
	}
}

// Directions returns the directions the attack's label covers.
func (a *Attack) Directions() []string {
	if a.Expect.Direction == "both" {
		return []string{"inbound", "outbound"}
	}
	return []string{a.Expect.Direction}
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
