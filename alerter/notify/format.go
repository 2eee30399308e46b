package notify

import (
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/packetworks/flowsentry/alerter/incident"
)

// Links builds the links every message carries. Templates: {id} is the
// incident id, {sql} the URL-encoded query.
type Links struct {
	ConsoleURL string `yaml:"console_url"` // e.g. https://console.example.net/incidents/{id}
	QueryURL   string `yaml:"query_url"`   // e.g. https://console.example.net/query?sql={sql}
}

// Incident is the console page of the incident ("" when not configured).
func (l Links) Incident(id string) string {
	if l.ConsoleURL == "" {
		return ""
	}
	return strings.ReplaceAll(l.ConsoleURL, "{id}", url.PathEscape(id))
}

// Query is the link that runs SQL ("" when not configured).
func (l Links) Query(sql string) string {
	if l.QueryURL == "" {
		return ""
	}
	return strings.ReplaceAll(l.QueryURL, "{sql}", url.QueryEscape(sql))
}

// SQL is a ready ClickHouse query: the affected subnet's traffic per minute
// and its top sources over the incident's time range (plus 10 minutes
// before, to see the baseline).
func SQL(in *incident.Incident) string {
	from := in.StartedAt.Add(-10 * time.Minute).Unix()
	to := in.EndedAt
	if to.IsZero() || in.State == incident.Open {
		to = in.UpdatedAt.Add(10 * time.Minute)
	}
	where := fmt.Sprintf("customer = %s AND subnet = %s AND direction = %s\n  AND time_received BETWEEN toDateTime(%d) AND toDateTime(%d)",
		quote(in.Customer), quote(in.Subnet), quote(in.Direction), from, to.Unix())
	return "SELECT toStartOfMinute(time_received) AS minute, sum(bytes) * 8 / 60 AS bps, sum(packets) / 60 AS pps,\n" +
		"  topK(5)(IPv6NumToString(src_addr)) AS top_sources\nFROM flowsentry.flows\nWHERE " + where +
		"\nGROUP BY minute ORDER BY minute"
}

// quote is a ClickHouse string literal.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}

// Rate formats a value with its unit in SI steps: 2.00 Mpps, 1.20 Gbps.
func Rate(v float64, unit string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprintf("%v %s", v, unit)
	}
	prefixes := []string{"", "k", "M", "G", "T", "P"}
	i := 0
	a := math.Abs(v)
	for a >= 1000 && i < len(prefixes)-1 {
		a /= 1000
		v /= 1000
		i++
	}
	var num string
	switch {
	case i == 0 && v == math.Trunc(v):
		num = fmt.Sprintf("%.0f", v)
	case a >= 100:
		num = fmt.Sprintf("%.0f", v)
	case a >= 10:
		num = fmt.Sprintf("%.1f", v)
	default:
		num = fmt.Sprintf("%.2f", v)
	}
	if unit == "" {
		return num + prefixes[i]
	}
	return num + " " + prefixes[i] + unit
}

// Ratio says how far observed is from expected, e.g. "200x expected".
func Ratio(obs, exp float64) string {
	if exp <= 0 {
		return "no traffic expected"
	}
	r := obs / exp
	if r >= 1 {
		return fmt.Sprintf("%.3gx expected", r)
	}
	return fmt.Sprintf("%.0f%% of expected", r*100)
}

// Figures is the one-line "how big": observed vs expected with units.
func Figures(in *incident.Incident) string {
	return fmt.Sprintf("%s %s vs %s expected (%s, score %.1f)", in.Metric, Rate(in.Observed, in.Unit),
		Rate(in.Expected, in.Unit), Ratio(in.Observed, in.Expected), in.Score)
}

// Who is "customer subnet direction".
func Who(in *incident.Incident) string {
	s := in.Customer
	if s == "" {
		s = "(no customer)"
	}
	if in.Subnet != "" {
		s += " " + in.Subnet
	} else {
		s += " (customer-wide)"
	}
	return s + " " + in.Direction
}

// Title is "[CRITICAL] syn_flood on acme 203.0.113.0/24 inbound".
func Title(in *incident.Incident) string {
	return fmt.Sprintf("[%s] %s on %s", strings.ToUpper(in.Severity), in.Class, Who(in))
}

// Duration is a short human duration: 1h5m, 42s.
func Duration(d time.Duration) string {
	if d < time.Minute {
		return d.Round(time.Second).String()
	}
	d = d.Round(time.Minute)
	s := d.String()
	return strings.TrimSuffix(s, "0s")
}

// TopList renders heavy hitters as "key (share%)".
func TopList(items []incident.TopItem, n int) string {
	var parts []string
	for i, it := range items {
		if i == n {
			break
		}
		parts = append(parts, fmt.Sprintf("%s (%.0f%%)", it.Key, it.Share*100))
	}
	return strings.Join(parts, ", ")
}

// MitigationText is the suggested rule in one line, "" when none.
func MitigationText(m incident.Mitigation) string {
	if m.Description != "" {
		return m.Description
	}
	if m.DstPrefix == "" && m.SrcPrefix == "" && m.Action == "" {
		return ""
	}
	var parts []string
	if m.SrcPrefix != "" {
		parts = append(parts, "src "+m.SrcPrefix)
	}
	if m.DstPrefix != "" {
		parts = append(parts, "dst "+m.DstPrefix)
	}
	if len(m.Protocols) > 0 {
		parts = append(parts, fmt.Sprintf("proto %v", m.Protocols))
	}
	if len(m.SrcPorts) > 0 {
		parts = append(parts, fmt.Sprintf("src-port %v", m.SrcPorts))
	}
	if len(m.DstPorts) > 0 {
		parts = append(parts, fmt.Sprintf("dst-port %v", m.DstPorts))
	}
	if m.PacketLengthMin > 0 || m.PacketLengthMax > 0 {
		parts = append(parts, fmt.Sprintf("length %d-%d", m.PacketLengthMin, m.PacketLengthMax))
	}
	if m.TCPFlags != "" {
		parts = append(parts, "tcp-flags "+m.TCPFlags)
	}
	if m.Action != "" {
		parts = append(parts, "then "+m.Action)
	}
	return strings.Join(parts, " ")
}

// ClassText explains a class in plain language for customers.
func ClassText(class string) string {
	switch class {
	case "volumetric":
		return "an unusually large volume of traffic"
	case "syn_flood":
		return "a flood of TCP connection requests (a SYN flood)"
	case "udp_flood":
		return "a flood of UDP packets"
	case "icmp_flood":
		return "a flood of ICMP (ping) packets"
	case "fragment_flood":
		return "a flood of fragmented IP packets"
	case "amplification":
		return "an amplification attack: replies from many public servers (such as DNS or NTP) that someone asked to answer you"
	case "carpet_bombing":
		return "an attack spread over many of your addresses at once"
	case "scan":
		return "a scan: someone probing many of your addresses or ports"
	case "traffic_drop":
		return "a sudden drop of your traffic, which can mean an outage"
	}
	return "unusual traffic (" + class + ")"
}
