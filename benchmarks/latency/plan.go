package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/packetworks/flowsentry/benchmarks/scenario"
)

// options is one run. Detection settings are production defaults
// (detector.example.yaml) except where a field says otherwise.
type options struct {
	Quick   bool
	Attacks int
	// Spacing between attack starts: 13 s is not a multiple of the 10 s
	// window, so successive attacks start at different phases of it (0, 3,
	// 6, 9, 2, 5 s after an arbitrary first one) and datagram→START covers
	// the range from "just before a window ends" to "just after one began".
	Spacing time.Duration
	Lead    time.Duration // live traffic before the first attack
	// WarmupWindows is the detector's baseline.warmup_windows (production:
	// 360 = 1 h). A target alerts only once warm; how long it learned
	// does not change when a START is published, so the run replays just
	// enough history (time-compressed) to be warm.
	WarmupWindows int
	// EndWindows is classify.default.end_windows (production 3). Quick
	// mode uses 1 to fit in a minute: its stop→END figures are then not
	// the production ones.
	EndWindows int
	// Alerter route timers. group_wait 0: the first notification goes at
	// the alerter's next tick (1 s, its default) instead of after an
	// operator-chosen batching delay, so the figure is the pipeline's own.
	GroupWait, GroupInterval time.Duration
	HistoryRate              float64       // history replay pace, records/s
	Hold                     time.Duration // an attack stops this long after its START was read...
	// ...but not before it has lasted MinAttack: stopping right after
	// START would stop every attack at the same phase of a window (START
	// follows a window's end), and stop→END would not vary with the phase.
	MinAttack time.Duration
	MaxAttack time.Duration // an attack stops after this even without a START

	Brokers []string
	Bin     string // directory with collector, detector, alerter; "" = go build them
	Repo    string // repository root (go.work), for the build
	WorkDir string // configs, logs, state; "" = a temporary directory
	Keep    bool   // keep WorkDir
	Log     io.Writer
}

// Detector settings the run relies on (production defaults; see
// docs/detection.md): the explanations in the report quote them.
const (
	windowSeconds   = 10
	latenessSeconds = 5
)

func defaultOptions(quick bool) options {
	o := options{Quick: quick, Attacks: 6, Spacing: 13 * time.Second, Lead: 3 * time.Second, WarmupWindows: 60,
		EndWindows: 3, GroupWait: 0, GroupInterval: time.Second, HistoryRate: 40000, Hold: time.Second, MinAttack: 12 * time.Second,
		MaxAttack: 30 * time.Second, Brokers: []string{"127.0.0.1:9092"}}
	if quick {
		o.Attacks, o.Spacing, o.Lead, o.WarmupWindows, o.EndWindows = 2, 6*time.Second, 2*time.Second, 20, 1
	}
	return o
}

func (o options) validate() error {
	var errs []error
	if o.Attacks < 1 || o.Attacks > 20 {
		errs = append(errs, fmt.Errorf("-attacks: %d is not in 1..20", o.Attacks))
	}
	if o.Spacing <= 0 {
		errs = append(errs, fmt.Errorf("-spacing: %s must be positive", o.Spacing))
	}
	if o.WarmupWindows < 1 {
		errs = append(errs, fmt.Errorf("-warmup-windows: %d must be >= 1", o.WarmupWindows))
	}
	if o.EndWindows < 1 {
		errs = append(errs, fmt.Errorf("-end-windows: %d must be >= 1", o.EndWindows))
	}
	if o.GroupWait < 0 || o.GroupInterval <= 0 {
		errs = append(errs, errors.New("-group-wait must be >= 0 and -group-interval > 0"))
	}
	if o.HistoryRate <= 0 {
		errs = append(errs, fmt.Errorf("-history-rate: %g must be positive", o.HistoryRate))
	}
	if len(o.Brokers) == 0 || o.Brokers[0] == "" {
		errs = append(errs, errors.New("-brokers: required"))
	}
	return errors.Join(errs...)
}

// history is the event time replayed before live traffic: the warm-up
// plus two windows, so that the last warm-up window is finally evaluated
// (lateness) before live traffic starts.
func (o options) history() time.Duration {
	return time.Duration(o.WarmupWindows+2) * windowSeconds * time.Second
}

// Attack kinds the driver sends (detector classes).
const (
	kindSYN = "syn_flood"
	kindUDP = "udp_flood"
)

// Traffic. Every exporter samples 1:1000 so that a 200 k pps attack is 200
// records a second and the history replays in seconds; 20 k pps in and out
// per subnet is well above the detector's floors.
const (
	sampling      = 1000
	subnetPPS     = 20000
	attackPPS     = 200000
	exporterAddr  = "127.0.103.%d" // loopback sources: live exporters 1..3, history 9
	historyDomain = 100
)

var exporterProtocols = []string{scenario.NetFlow9, scenario.SFlow, scenario.IPFIX}

// customer i owns 198.18.(101+i).0/24 (benchmarking range, RFC 2544).
func customerID(i int) string { return fmt.Sprintf("lat-%d", i+1) }
func customerSubnet(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(101 + i), 0}), 24)
}

// scenarioYAML is the background traffic: one customer and subnet per
// attack, spread over a NetFlow v9, an sFlow and an IPFIX exporter.
func scenarioYAML(customers int) string {
	var b strings.Builder
	b.WriteString("name: e2e-latency\nseed: 8\nhistory: 0s\ntail: 1s\ndiurnal: {amplitude: 0, peak_hour: 0}\nnoise: 0.05\nexporters:\n")
	for i, p := range exporterProtocols {
		fmt.Fprintf(&b, "  - {name: r%d, protocol: %s, address: "+exporterAddr+", sampling: %d}\n", i+1, p, i+1, sampling)
	}
	b.WriteString("customers:\n")
	for i := range customers {
		fmt.Fprintf(&b, "  - id: %s\n    name: Latency customer %d\n    exporter: r%d\n    subnets:\n"+
			"      - {prefix: %s, profile: hosting, hosts: 8, in_pps: %d, out_pps: %d}\n",
			customerID(i), i+1, i%len(exporterProtocols)+1, customerSubnet(i), subnetPPS, subnetPPS)
	}
	return b.String()
}

// inventoryYAML gives the services the same customers.
func inventoryYAML(customers int) string {
	var b strings.Builder
	b.WriteString("default_granularity: {ipv4: 24, ipv6: 64}\ncustomers:\n")
	for i := range customers {
		fmt.Fprintf(&b, "  - {id: %s, name: Latency customer %d, prefixes: [%s]}\n", customerID(i), i+1, customerSubnet(i))
	}
	return b.String()
}

// attacks alternates SYN and UDP floods, attack i on customer i's subnet
// (different customers, so no two share a Slack group).
func attacks(n int) []*attack {
	out := make([]*attack, n)
	for i := range n {
		kind, host := kindSYN, 10
		if i%2 == 1 {
			kind, host = kindUDP, 11
		}
		p := customerSubnet(i)
		b := p.Addr().As4()
		b[3] = byte(host)
		out[i] = &attack{target: netip.AddrFrom4(b), exporter: i % len(exporterProtocols), pps: attackPPS,
			run: attackRun{Name: fmt.Sprintf("%s-%d", kind, i+1), Kind: kind, Customer: customerID(i), Subnet: p.String(),
				Direction: "inbound", Exporter: exporterProtocols[i%len(exporterProtocols)]}}
	}
	return out
}
