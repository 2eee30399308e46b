// Package inventory is the customer inventory: which prefixes belong to which
// customer, who to tell when they are attacked, and the static per-customer
// floors and ceilings that sit beside the learned baselines. The collector
// uses it to tag flows (customer, subnet key, direction), the detector for
// thresholds, the alerter for contacts.
package inventory

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/packetworks/flowsentry/schemas/config"
	"github.com/packetworks/flowsentry/schemas/secret"
)

// File is the YAML layout of the inventory file.
type File struct {
	// Protected networks without a customer of their own (e.g. the ISP's
	// infrastructure). Customer prefixes are protected too.
	Protected          []string    `yaml:"protected"`
	DefaultGranularity Granularity `yaml:"default_granularity"`
	Customers          []Customer  `yaml:"customers"`
}

// Granularity is the prefix length of subnet keys for addresses of a
// protected network that no customer prefix matches.
type Granularity struct {
	IPv4 int `yaml:"ipv4"`
	IPv6 int `yaml:"ipv6"`
}

// Customer is one customer of the ISP.
type Customer struct {
	ID       string   `yaml:"id"`
	Name     string   `yaml:"name"`
	Prefixes []string `yaml:"prefixes"`
	Contacts Contacts `yaml:"contacts"`
	Notify   Notify   `yaml:"notify"`
	// Floors: a metric below its floor never alerts (e.g. bps: 1e6), so a
	// tiny subnet does not page for 3x of nothing. Ceilings: a metric above
	// its ceiling alerts whatever the baseline says. Keys are metric names
	// of the detector (bps, pps, flows, pps_syn, ...).
	Floors   map[string]float64 `yaml:"floors"`
	Ceilings map[string]float64 `yaml:"ceilings"`
}

// Contacts are the customer's people and systems to notify.
type Contacts struct {
	Emails        []string   `yaml:"emails"`
	WebhookURL    secret.Ref `yaml:"webhook_url"`
	WebhookSecret secret.Ref `yaml:"webhook_secret"`
}

// Notify says which anomalies the customer is told about.
type Notify struct {
	Classes     []string `yaml:"classes"`      // empty: every class
	MinSeverity string   `yaml:"min_severity"` // info, warning (default) or critical
}

// Match is the result of a lookup.
type Match struct {
	Customer *Customer // nil when no customer prefix holds the address
	Prefix   netip.Prefix
	// Protected is true when the address is in a customer prefix or a
	// protected network.
	Protected bool
}

// Inventory answers longest-prefix-match lookups.
type Inventory struct {
	file      File
	customers []Customer
	// One map per family and prefix length, lengths longest first: at most
	// 33 (IPv4) or 129 (IPv6) probes, usually a handful.
	v4, v6 table
	gran   Granularity
}

type entry struct {
	customer int // index in customers, -1 for a protected network
	prefix   netip.Prefix
}

type table struct {
	lengths []int
	byLen   map[int]map[netip.Prefix]entry
}

// Load reads and validates an inventory YAML file.
func Load(path string) (*Inventory, error) {
	var f File
	if err := config.Load(path, &f); err != nil {
		return nil, fmt.Errorf("inventory %s: %w", path, err)
	}
	inv, err := New(f)
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", path, err)
	}
	return inv, nil
}

// New validates f and builds the lookup tables. Errors name the bad key.
func New(f File) (*Inventory, error) {
	if f.DefaultGranularity.IPv4 == 0 {
		f.DefaultGranularity.IPv4 = 24
	}
	if f.DefaultGranularity.IPv6 == 0 {
		f.DefaultGranularity.IPv6 = 64
	}
	inv := &Inventory{file: f, customers: f.Customers, gran: f.DefaultGranularity,
		v4: table{byLen: map[int]map[netip.Prefix]entry{}}, v6: table{byLen: map[int]map[netip.Prefix]entry{}}}
	var errs []error
	if g := f.DefaultGranularity.IPv4; g < 1 || g > 32 {
		errs = append(errs, fmt.Errorf("default_granularity.ipv4: %d is not in 1..32", g))
	}
	if g := f.DefaultGranularity.IPv6; g < 1 || g > 128 {
		errs = append(errs, fmt.Errorf("default_granularity.ipv6: %d is not in 1..128", g))
	}
	add := func(key, s string, cust int) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
			return
		}
		if p.Masked() != p {
			errs = append(errs, fmt.Errorf("%s: %s has host bits set (did you mean %s?)", key, s, p.Masked()))
			return
		}
		t := &inv.v4
		if p.Addr().Is6() {
			t = &inv.v6
		}
		m := t.byLen[p.Bits()]
		if m == nil {
			m = map[netip.Prefix]entry{}
			t.byLen[p.Bits()] = m
			t.lengths = append(t.lengths, p.Bits())
		}
		if prev, dup := m[p]; dup && prev.customer >= 0 && cust >= 0 {
			errs = append(errs, fmt.Errorf("%s: %s already belongs to customer %q", key, s, inv.customers[prev.customer].ID))
			return
		}
		if _, dup := m[p]; !dup || cust >= 0 {
			m[p] = entry{customer: cust, prefix: p}
		}
	}
	ids := map[string]bool{}
	for i, c := range f.Customers {
		key := fmt.Sprintf("customers[%d]", i)
		if c.ID == "" {
			errs = append(errs, fmt.Errorf("%s.id: required", key))
		} else if ids[c.ID] {
			errs = append(errs, fmt.Errorf("%s.id: duplicate id %q", key, c.ID))
		}
		ids[c.ID] = true
		if len(c.Prefixes) == 0 {
			errs = append(errs, fmt.Errorf("%s.prefixes: at least one prefix is required", key))
		}
		for j, p := range c.Prefixes {
			add(fmt.Sprintf("%s.prefixes[%d]", key, j), p, i)
		}
		switch c.Notify.MinSeverity {
		case "", "info", "warning", "critical":
		default:
			errs = append(errs, fmt.Errorf("%s.notify.min_severity: %q is not info, warning or critical", key, c.Notify.MinSeverity))
		}
		for m, v := range c.Floors {
			if c, ok := c.Ceilings[m]; ok && c <= v {
				errs = append(errs, fmt.Errorf("%s.ceilings.%s: %g is not above the floor %g", key, m, c, v))
			}
		}
	}
	for i, p := range f.Protected {
		add(fmt.Sprintf("protected[%d]", i), p, -1)
	}
	slices.SortFunc(inv.v4.lengths, func(a, b int) int { return b - a })
	slices.SortFunc(inv.v6.lengths, func(a, b int) int { return b - a })
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return inv, nil
}

// Lookup finds the longest customer prefix or protected network holding a.
// When a customer prefix holds a, Prefix is that customer prefix.
func (inv *Inventory) Lookup(a netip.Addr) Match {
	a = a.Unmap()
	t := &inv.v4
	if a.Is6() {
		t = &inv.v6
	}
	var m Match
	for _, l := range t.lengths {
		p, _ := a.Prefix(l)
		e, ok := t.byLen[l][p]
		if !ok {
			continue
		}
		if !m.Protected {
			m.Protected = true
			m.Prefix = e.prefix
		}
		if e.customer >= 0 {
			// The customer prefix is the key even when a longer
			// protected-only network lies inside it.
			m.Customer = &inv.customers[e.customer]
			m.Prefix = e.prefix
			return m
		}
	}
	return m
}

// SubnetKey is the subnet key of a protected address: its customer prefix,
// else the address masked to the default granularity. ok is false when the
// address is not protected.
func (inv *Inventory) SubnetKey(a netip.Addr) (key netip.Prefix, m Match, ok bool) {
	a = a.Unmap()
	m = inv.Lookup(a)
	if !m.Protected {
		return netip.Prefix{}, m, false
	}
	if m.Customer != nil {
		return m.Prefix, m, true
	}
	bits := inv.gran.IPv4
	if a.Is6() {
		bits = inv.gran.IPv6
	}
	if bits < m.Prefix.Bits() {
		// A protected network smaller than the granularity is its own key.
		return m.Prefix, m, true
	}
	p, _ := a.Prefix(bits)
	return p, m, true
}

// Customers returns the customers in file order.
func (inv *Inventory) Customers() []Customer { return inv.customers }

// Customer returns the customer with id, or nil.
func (inv *Inventory) Customer(id string) *Customer {
	for i := range inv.customers {
		if inv.customers[i].ID == id {
			return &inv.customers[i]
		}
	}
	return nil
}
