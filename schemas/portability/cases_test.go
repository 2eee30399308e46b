package portability

import "strings"

// portabilityCase inserts rows through every table of the schema and reads
// them back with the functions analysts use; the expected TSV is the same on
// 18.16 and on current releases, or the schema is not portable.
type portabilityCase struct {
	name  string
	query string
	want  string
}

// rows returns INSERTs tagged with marker (a unique customer id) so that a
// run against the shared 18.16 server only sees its own rows. Their Kafka
// partitions (65001, 65003) are beyond any real topic's, so the sink's
// replay check can never mistake them for flows it already wrote.
func rows(marker string) []string {
	s := []string{
		`INSERT INTO flowsentry.flows (time_received, time_flow_start, time_flow_end, flow_type, exporter, sampling_rate,
  src_addr, dst_addr, src_port, dst_port, proto, etype, tcp_flags, bytes, packets, customer, subnet, direction,
  kafka_partition, kafka_offset, kafka_index) VALUES
 ('2026-11-27 10:00:01', '2026-11-27 10:00:00', '2026-11-27 10:00:01', 'ipfix', toFixedString(IPv6StringToNum('::ffff:192.0.2.1'), 16), 100,
  toFixedString(IPv6StringToNum('::ffff:198.51.100.7'), 16), toFixedString(IPv6StringToNum('::ffff:203.0.113.9'), 16), 443, 51000, 6, 2048, 2, 150000, 100, '@M', '203.0.113.0/24', 'inbound', 65003, 42, 0),
 ('2026-11-27 10:00:02', '2026-11-27 10:00:01', '2026-11-27 10:00:02', 'netflow9', toFixedString(IPv6StringToNum('::ffff:192.0.2.1'), 16), 1,
  toFixedString(IPv6StringToNum('2001:db8::1'), 16), toFixedString(IPv6StringToNum('2001:db8:100::5'), 16), 53, 33000, 17, 34525, 0, 3000, 2, '@M', '2001:db8:100::/48', 'inbound', 65003, 43, 0),
 ('2026-11-28 00:00:05', '2026-11-28 00:00:04', '2026-11-28 00:00:05', 'sflow5', toFixedString(IPv6StringToNum('::ffff:192.0.2.2'), 16), 512,
  toFixedString(IPv6StringToNum('::ffff:203.0.113.9'), 16), toFixedString(IPv6StringToNum('::ffff:8.8.8.8'), 16), 40000, 22, 6, 2048, 18, 51200, 512, '@M', '203.0.113.0/24', 'outbound', 65001, 7, 2)`,
		`INSERT INTO flowsentry.alerts (incident_id, event_kind, event_seq, customer, subnet, direction, class, severity,
  started_at, updated_at, ended_at, metric, unit, observed, expected, score, peak_bps, peak_pps, total_bytes, total_packets, fingerprint, reason) VALUES
 ('@M-inc', 'start', 0, '@M', '203.0.113.0/24', 'inbound', 'syn_flood', 'critical', '2026-11-27 10:00:00', '2026-11-27 10:00:00', '1970-01-01 00:00:00', 'pps_syn', 'pps', 90000, 1000, 42.5, 0, 90000, 0, 0, '{"top_sources":[]}', ''),
 ('@M-inc', 'end', 2, '@M', '203.0.113.0/24', 'inbound', 'syn_flood', 'critical', '2026-11-27 10:00:00', '2026-11-27 10:05:00', '2026-11-27 10:05:00', 'pps_syn', 'pps', 800, 1000, 0.1, 120000000, 95000, 9000000000, 30000000, '{"top_sources":[]}', 'below threshold')`,
		`INSERT INTO flowsentry.baselines (time, customer, subnet, direction, metric, expected, spread, observed, p95, samples) VALUES
 ('2026-11-27 10:00:00', '@M', '203.0.113.0/24', 'inbound', 'bps', 1000000, 50000, 1200000, 1500000, 1440)`,
	}
	for i := range s {
		s[i] = strings.ReplaceAll(s[i], "@M", marker)
	}
	return s
}

func cases(marker string) []portabilityCase {
	c := []portabilityCase{
		{"flows addresses and enums",
			`SELECT IPv6NumToString(src_addr), IPv6NumToString(dst_addr), IPv6NumToString(exporter), flow_type, direction, proto, bytes
 FROM flowsentry.flows WHERE customer = '@M' ORDER BY time_received`,
			"::ffff:198.51.100.7\t::ffff:203.0.113.9\t::ffff:192.0.2.1\tipfix\tinbound\t6\t150000\n" +
				"2001:db8::1\t2001:db8:100::5\t::ffff:192.0.2.1\tnetflow9\tinbound\t17\t3000\n" +
				"::ffff:203.0.113.9\t::ffff:8.8.8.8\t::ffff:192.0.2.2\tsflow5\toutbound\t6\t51200\n"},
		{"flows day partitions",
			`SELECT toYYYYMMDD(time_received) AS day, count(), sum(bytes) FROM flowsentry.flows WHERE customer = '@M' GROUP BY day ORDER BY day`,
			"20261127\t2\t153000\n20261128\t1\t51200\n"},
		{"ipv4 filter on mapped address",
			`SELECT count() FROM flowsentry.flows WHERE customer = '@M' AND dst_addr = toFixedString(IPv6StringToNum('::ffff:203.0.113.9'), 16)`,
			"1\n"},
		{"alerts latest state",
			`SELECT incident_id, argMax(event_kind, event_seq), argMax(ended_at, event_seq), max(peak_pps), class, severity
 FROM flowsentry.alerts WHERE customer = '@M' GROUP BY incident_id, class, severity`,
			"@M-inc\tend\t2026-11-27 10:05:00\t95000\tsyn_flood\tcritical\n"},
		{"baselines",
			`SELECT subnet, metric, expected, spread, observed, p95 FROM flowsentry.baselines WHERE customer = '@M'`,
			"203.0.113.0/24\tbps\t1000000\t50000\t1200000\t1500000\n"},
	}
	for i := range c {
		c[i].query = strings.ReplaceAll(c[i].query, "@M", marker)
		c[i].want = strings.ReplaceAll(c[i].want, "@M", marker)
	}
	return c
}
