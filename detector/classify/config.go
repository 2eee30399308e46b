// Package classify turns a scored window into anomaly classes and runs the
// start/end hysteresis that produces START, UPDATE and END events.
package classify

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/packetworks/flowsentry/detector/window"
)

// Class names, exactly as events carry them.
const (
	Volumetric    = "volumetric"
	SynFlood      = "syn_flood"
	UDPFlood      = "udp_flood"
	ICMPFlood     = "icmp_flood"
	FragmentFlood = "fragment_flood"
	Amplification = "amplification"
	CarpetBombing = "carpet_bombing"
	Scan          = "scan"
	TrafficDrop   = "traffic_drop"
)

// Classes lists every class.
var Classes = []string{Volumetric, SynFlood, UDPFlood, ICMPFlood, FragmentFlood, Amplification, CarpetBombing, Scan, TrafficDrop}

// Thresholds is the hysteresis of one class. A window is "above" when the
// class's score reaches Start; StartWindows consecutive above windows open
// an anomaly; EndWindows consecutive windows below End close it. Zero
// fields in an override inherit.
type Thresholds struct {
	Start        float64 `yaml:"start"`
	End          float64 `yaml:"end"`
	StartWindows int     `yaml:"start_windows"`
	EndWindows   int     `yaml:"end_windows"`
}

func (t Thresholds) over(o Thresholds) Thresholds {
	if o.Start != 0 {
		t.Start = o.Start
	}
	if o.End != 0 {
		t.End = o.End
	}
	if o.StartWindows != 0 {
		t.StartWindows = o.StartWindows
	}
	if o.EndWindows != 0 {
		t.EndWindows = o.EndWindows
	}
	return t
}

// Surge decides when a volumetric window is a legitimate surge (a flash
// crowd: a release, a news spike) rather than an attack: its increase has
// the baseline's protocol, SYN and fragment mix and mean packet size, and
// it comes from proportionally more remote peers, each sending at its
// usual rate. Floods change at least one of these; see docs/detection.md.
type Surge struct {
	// NoticeRatio: a benign-looking surge below NoticeRatio x expected
	// opens nothing; at or above it opens a volumetric anomaly of severity
	// info (capacity, not attack). 0 turns the rule off.
	NoticeRatio float64 `yaml:"notice_ratio"`
	// MaxMixShift: largest total-variation distance between the protocol
	// mix of the increase and the baseline's (also the largest change of
	// the SYN-only and fragment shares), 0..1.
	MaxMixShift float64 `yaml:"max_mix_shift"`
	// MaxSizeChange: the increase's mean packet size must be within this
	// factor of the baseline's.
	MaxSizeChange float64 `yaml:"max_size_change"`
	// MaxPeerRate: packets per remote peer (sources inbound, destinations
	// outbound) at most this many times the baseline's.
	MaxPeerRate float64 `yaml:"max_peer_rate"`
}

// Config is the "classify" section.
type Config struct {
	Default   Thresholds                       `yaml:"default"`
	Classes   map[string]Thresholds            `yaml:"classes"`
	Customers map[string]map[string]Thresholds `yaml:"customers"` // customer id -> class -> override

	// MinRatio: an above window must also be MinRatio times the expected
	// value: a robust score alone over-reacts on very steady series.
	MinRatio float64 `yaml:"min_ratio"`
	// Floors per metric name: below its floor a metric never alerts. The
	// inventory's per-customer floors override these.
	Floors map[string]float64 `yaml:"floors"`
	// MinSamples: a metric alerts only on at least this many packets the
	// exporter actually sampled in the window (records for flows and
	// distinct counts). Floors are in scaled units: at 1:1000 the 200 pps
	// ICMP floor is two sampled packets, which prove nothing.
	MinSamples float64 `yaml:"min_samples"`
	// Surge is the benign-surge (flash crowd) rule of the volumetric class.
	Surge Surge `yaml:"surge"`
	// RefineWindows: during its first RefineWindows final windows a
	// volumetric anomaly takes a more specific flood class when one holds
	// (same id, an UPDATE says so); 0 never.
	RefineWindows int `yaml:"refine_windows"`

	SynShare      float64  `yaml:"syn_share"`      // SYN-only share of TCP packets
	UDPShare      float64  `yaml:"udp_share"`      // UDP share of packets
	ICMPShare     float64  `yaml:"icmp_share"`     // ICMP share of packets
	FragmentShare float64  `yaml:"fragment_share"` // fragment share of packets
	AmpPorts      []uint32 `yaml:"amplification_ports"`
	AmpPortShare  float64  `yaml:"amplification_port_share"` // top source port's share of packets

	CarpetMinDestinations float64 `yaml:"carpet_min_destinations"`
	CarpetMaxTopShare     float64 `yaml:"carpet_max_top_share"` // busiest destination's share
	// CarpetMinDstRatio: distinct destinations must rise this much over
	// their baseline, or a flood on a busy server farm reads as carpet.
	CarpetMinDstRatio float64 `yaml:"carpet_min_dst_ratio"`

	ScanMinDestinations   float64 `yaml:"scan_min_destinations"`
	ScanMinPorts          float64 `yaml:"scan_min_ports"`
	ScanMaxPacketsPerFlow float64 `yaml:"scan_max_packets_per_flow"`
	ScanMinTopSourceShare float64 `yaml:"scan_min_top_source_share"`

	DropMinExpectedPps float64 `yaml:"drop_min_expected_pps"`
	DropRatio          float64 `yaml:"drop_ratio"`

	UpdateEveryWindows int     `yaml:"update_every_windows"`
	CriticalRatio      float64 `yaml:"critical_ratio"`
	WarningRatio       float64 `yaml:"warning_ratio"`
	// RelearnAfterWindows: an anomaly older than this lets the baseline
	// learn again (clipped), so a lasting change of normal ends it.
	RelearnAfterWindows int `yaml:"relearn_after_windows"`
}

// DefaultConfig returns the defaults documented in docs/detection.md.
func DefaultConfig() Config {
	return Config{
		Default: Thresholds{Start: 5, End: 2.5, StartWindows: 1, EndWindows: 3},
		Classes: map[string]Thresholds{
			// Scans and drops are not urgent; two windows avoid noise.
			Scan:        {StartWindows: 2},
			TrafficDrop: {StartWindows: 3, EndWindows: 2},
		},
		Customers: map[string]map[string]Thresholds{},
		MinRatio:  2,
		Floors: map[string]float64{"bps": 5e6, "pps": 1000, "flows": 100, "pps_tcp": 1000, "pps_udp": 1000,
			"pps_icmp": 200, "pps_other": 500, "pps_syn": 300, "pps_frag": 200,
			"distinct_src": 0, "distinct_dst": 0, "distinct_dst_ports": 0},
		// Poisson: 10 sampled packets put the rate within 0.5-1.8x its
		// estimate (exact 95 % interval 4.8-18.4); 2 within 0.12-3.6x.
		MinSamples:    10,
		Surge:         Surge{NoticeRatio: 10, MaxMixShift: 0.2, MaxSizeChange: 2, MaxPeerRate: 2},
		RefineWindows: 3,
		SynShare:      0.5, UDPShare: 0.5, ICMPShare: 0.5, FragmentShare: 0.3,
		// DNS, NTP, SNMP, CLDAP, SSDP, memcached, chargen, WS-Discovery,
		// portmap, NetBIOS, RIP, QOTD, mDNS, OpenVPN, ARMS, CoAP.
		AmpPorts:              []uint32{53, 123, 161, 389, 1900, 11211, 19, 3702, 111, 137, 520, 17, 5353, 1194, 3283, 5683},
		AmpPortShare:          0.4,
		CarpetMinDestinations: 16, CarpetMaxTopShare: 0.25, CarpetMinDstRatio: 1.5,
		ScanMinDestinations: 64, ScanMinPorts: 100, ScanMaxPacketsPerFlow: 4, ScanMinTopSourceShare: 0.5,
		DropMinExpectedPps: 1000, DropRatio: 0.1,
		UpdateEveryWindows: 6, CriticalRatio: 10, WarningRatio: 3,
		RelearnAfterWindows: 2160, // 6 h at 10 s
	}
}

// Validate names the bad key under prefix.
func (c Config) Validate(prefix string) error {
	var errs []error
	checkT := func(key string, t Thresholds, full bool) {
		if full || t.Start != 0 || t.End != 0 {
			if !(t.Start > 0) && (full || t.Start != 0) {
				errs = append(errs, fmt.Errorf("%s.start: %g must be > 0", key, t.Start))
			}
		}
		if t.StartWindows < 0 || (full && t.StartWindows < 1) {
			errs = append(errs, fmt.Errorf("%s.start_windows: %d must be >= 1", key, t.StartWindows))
		}
		if t.EndWindows < 0 || (full && t.EndWindows < 1) {
			errs = append(errs, fmt.Errorf("%s.end_windows: %d must be >= 1", key, t.EndWindows))
		}
		if t.StartWindows > 255 || t.EndWindows > 255 {
			errs = append(errs, fmt.Errorf("%s: start_windows and end_windows must be <= 255", key))
		}
	}
	checkT(prefix+".default", c.Default, true)
	if c.Default.End >= c.Default.Start {
		errs = append(errs, fmt.Errorf("%s.default.end: %g must be below start %g (hysteresis)", prefix, c.Default.End, c.Default.Start))
	}
	for _, name := range sortedKeys(c.Classes) {
		if !slices.Contains(Classes, name) {
			errs = append(errs, fmt.Errorf("%s.classes.%s: unknown class (one of %v)", prefix, name, Classes))
			continue
		}
		checkT(prefix+".classes."+name, c.Classes[name], false)
		if t := c.Default.over(c.Classes[name]); t.End >= t.Start {
			errs = append(errs, fmt.Errorf("%s.classes.%s.end: %g must be below start %g", prefix, name, t.End, t.Start))
		}
	}
	for _, cust := range sortedKeys(c.Customers) {
		for _, name := range sortedKeys(c.Customers[cust]) {
			key := fmt.Sprintf("%s.customers.%s.%s", prefix, cust, name)
			if !slices.Contains(Classes, name) {
				errs = append(errs, fmt.Errorf("%s: unknown class", key))
				continue
			}
			checkT(key, c.Customers[cust][name], false)
		}
	}
	for _, m := range sortedKeys(c.Floors) {
		if _, ok := window.MetricByName(m); !ok {
			errs = append(errs, fmt.Errorf("%s.floors.%s: unknown metric (one of %v)", prefix, m, window.MetricNames()))
		}
	}
	if !(c.CarpetMinDstRatio >= 1) {
		errs = append(errs, fmt.Errorf("%s.carpet_min_dst_ratio: %g must be >= 1", prefix, c.CarpetMinDstRatio))
	}
	if !(c.MinRatio >= 1) {
		errs = append(errs, fmt.Errorf("%s.min_ratio: %g must be >= 1", prefix, c.MinRatio))
	}
	for _, s := range []struct {
		k string
		v float64
	}{{"syn_share", c.SynShare}, {"udp_share", c.UDPShare}, {"icmp_share", c.ICMPShare},
		{"fragment_share", c.FragmentShare}, {"amplification_port_share", c.AmpPortShare},
		{"carpet_max_top_share", c.CarpetMaxTopShare}, {"scan_min_top_source_share", c.ScanMinTopSourceShare},
		{"drop_ratio", c.DropRatio}} {
		if !(s.v > 0 && s.v <= 1) {
			errs = append(errs, fmt.Errorf("%s.%s: %g is not in (0, 1]", prefix, s.k, s.v))
		}
	}
	if !(c.MinSamples >= 0) {
		errs = append(errs, fmt.Errorf("%s.min_samples: %g must be >= 0", prefix, c.MinSamples))
	}
	if c.RefineWindows < 0 {
		errs = append(errs, fmt.Errorf("%s.refine_windows: %d must be >= 0", prefix, c.RefineWindows))
	}
	sg := c.Surge
	if !(sg.NoticeRatio == 0 || sg.NoticeRatio >= c.MinRatio) {
		errs = append(errs, fmt.Errorf("%s.surge.notice_ratio: %g must be 0 (off) or >= min_ratio %g", prefix, sg.NoticeRatio, c.MinRatio))
	}
	if !(sg.MaxMixShift > 0 && sg.MaxMixShift <= 1) {
		errs = append(errs, fmt.Errorf("%s.surge.max_mix_shift: %g is not in (0, 1]", prefix, sg.MaxMixShift))
	}
	if !(sg.MaxSizeChange >= 1) {
		errs = append(errs, fmt.Errorf("%s.surge.max_size_change: %g must be >= 1", prefix, sg.MaxSizeChange))
	}
	if !(sg.MaxPeerRate >= 1) {
		errs = append(errs, fmt.Errorf("%s.surge.max_peer_rate: %g must be >= 1", prefix, sg.MaxPeerRate))
	}
	if c.UpdateEveryWindows < 1 {
		errs = append(errs, fmt.Errorf("%s.update_every_windows: %d must be >= 1", prefix, c.UpdateEveryWindows))
	}
	if !(c.CriticalRatio > c.WarningRatio && c.WarningRatio >= 1) {
		errs = append(errs, fmt.Errorf("%s.critical_ratio/warning_ratio: need critical > warning >= 1 (got %g, %g)", prefix, c.CriticalRatio, c.WarningRatio))
	}
	if c.RelearnAfterWindows < 1 {
		errs = append(errs, fmt.Errorf("%s.relearn_after_windows: %d must be >= 1", prefix, c.RelearnAfterWindows))
	}
	return errors.Join(errs...)
}

// Thresholds returns the effective thresholds of class for customer.
func (c *Config) Thresholds(class, customer string) Thresholds {
	t := c.Default.over(c.Classes[class])
	if cust, ok := c.Customers[customer]; ok {
		t = t.over(cust[class])
	}
	return t
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
