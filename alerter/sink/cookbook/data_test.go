package cookbook

// testData fills the schema (database flowsentry; rewritten for the 18.16
// run) with traffic whose answers are known:
//   - acme 203.0.113.0/24 inbound, 2026-11-20 10:00-12:59: a flow every 10 s
//     (1000/2000/3000 bytes in hours 10/11/12), none 10:45-10:49;
//     every third flow is UDP/53, the others TCP/443; 4 sources.
//   - acme, 11:30-11:34:59: NTP amplification, 5 flows/s from 50 sources
//     (src port 123), 500 kB each; at 11:32:17 40 more flows from 100.64.1.1.
//   - acme, October: one 10 MB TCP flow per day at 12:00.
//   - globex 198.51.100.0/24 outbound, October-November: one flow per hour,
//     1 MB in October, 1.5 MB in November.
//   - alerts: acme inc-a1 (Nov, amplification, ended), inc-a2 (Oct,
//     volumetric, ended); globex inc-g1 (Nov, syn_flood, open), inc-g2
//     (Nov, scan, ended).
//   - baselines for acme bps/pps and globex bps on 2026-11-20.
var testData = []string{
	`INSERT INTO flowsentry.flows (time_received, time_flow_start, time_flow_end, flow_type, exporter, sampling_rate,
  src_addr, dst_addr, src_port, dst_port, proto, etype, bytes, packets, customer, subnet, direction,
  kafka_partition, kafka_offset, kafka_index)
SELECT t, t, t, 'ipfix', toFixedString(IPv6StringToNum('::ffff:192.0.2.1'), 16), 100,
  toFixedString(IPv6StringToNum(concat('::ffff:198.18.0.', toString(number % 4 + 1))), 16),
  toFixedString(IPv6StringToNum('::ffff:203.0.113.10'), 16),
  40000 + number % 1000, if(number % 3 = 0, 53, 443), if(number % 3 = 0, 17, 6), 2048,
  1000 * (toHour(t) - 9), 10 * (toHour(t) - 9), 'acme', '203.0.113.0/24', 'inbound', 0, number, 0
FROM (SELECT number, toDateTime('2026-11-20 10:00:00') + number * 10 AS t FROM system.numbers LIMIT 1080)
WHERE NOT (t >= toDateTime('2026-11-20 10:45:00') AND t < toDateTime('2026-11-20 10:50:00'))`,

	`INSERT INTO flowsentry.flows (time_received, time_flow_start, time_flow_end, flow_type, exporter, sampling_rate,
  src_addr, dst_addr, src_port, dst_port, proto, etype, bytes, packets, customer, subnet, direction,
  kafka_partition, kafka_offset, kafka_index)
SELECT t, t, t, 'ipfix', toFixedString(IPv6StringToNum('::ffff:192.0.2.1'), 16), 100,
  toFixedString(IPv6StringToNum(concat('::ffff:100.64.0.', toString(number % 50))), 16),
  toFixedString(IPv6StringToNum('::ffff:203.0.113.10'), 16),
  123, 1024 + number % 1000, 17, 2048, 500000, 1000, 'acme', '203.0.113.0/24', 'inbound', 1, number, 0
FROM (SELECT number, toDateTime('2026-11-20 11:30:00') + intDiv(number, 5) AS t FROM system.numbers LIMIT 1500)`,

	`INSERT INTO flowsentry.flows (time_received, time_flow_start, time_flow_end, flow_type, exporter, sampling_rate,
  src_addr, dst_addr, src_port, dst_port, proto, etype, bytes, packets, customer, subnet, direction,
  kafka_partition, kafka_offset, kafka_index)
SELECT toDateTime('2026-11-20 11:32:17'), toDateTime('2026-11-20 11:32:17'), toDateTime('2026-11-20 11:32:17'), 'sflow5',
  toFixedString(IPv6StringToNum('::ffff:192.0.2.3'), 16), 1,
  toFixedString(IPv6StringToNum('::ffff:100.64.1.1'), 16), toFixedString(IPv6StringToNum('::ffff:203.0.113.10'), 16),
  123, 2000, 17, 2048, 500000, 1000, 'acme', '203.0.113.0/24', 'inbound', 2, number, 0
FROM system.numbers LIMIT 40`,

	`INSERT INTO flowsentry.flows (time_received, time_flow_start, time_flow_end, flow_type, exporter, sampling_rate,
  src_addr, dst_addr, src_port, dst_port, proto, etype, bytes, packets, customer, subnet, direction,
  kafka_partition, kafka_offset, kafka_index)
SELECT t, t, t, 'netflow9', toFixedString(IPv6StringToNum('::ffff:192.0.2.1'), 16), 100,
  toFixedString(IPv6StringToNum('::ffff:198.18.0.9'), 16), toFixedString(IPv6StringToNum('::ffff:203.0.113.10'), 16),
  50000, 443, 6, 2048, 10000000, 10000, 'acme', '203.0.113.0/24', 'inbound', 3, number, 0
FROM (SELECT number, toDateTime('2026-10-01 12:00:00') + number * 86400 AS t FROM system.numbers LIMIT 31)`,

	`INSERT INTO flowsentry.flows (time_received, time_flow_start, time_flow_end, flow_type, exporter, sampling_rate,
  src_addr, dst_addr, src_port, dst_port, proto, etype, bytes, packets, customer, subnet, direction,
  kafka_partition, kafka_offset, kafka_index)
SELECT t, t, t, 'netflow9', toFixedString(IPv6StringToNum('::ffff:192.0.2.2'), 16), 1000,
  toFixedString(IPv6StringToNum('::ffff:198.51.100.20'), 16), toFixedString(IPv6StringToNum('::ffff:8.8.8.8'), 16),
  50001, 443, 6, 2048, if(toMonth(t) = 10, 1000000, 1500000), 1000, 'globex', '198.51.100.0/24', 'outbound', 4, number, 0
FROM (SELECT number, toDateTime('2026-10-01 00:00:00') + number * 3600 AS t FROM system.numbers LIMIT 1464)`,

	`INSERT INTO flowsentry.alerts (incident_id, event_kind, event_seq, customer, subnet, direction, class, severity,
  started_at, updated_at, ended_at, metric, unit, observed, expected, score, peak_bps, peak_pps, total_bytes, total_packets, fingerprint, reason) VALUES
 ('inc-a1', 'start', 0, 'acme', '203.0.113.0/24', 'inbound', 'amplification', 'warning', '2026-11-20 11:30:00', '2026-11-20 11:30:00', '1970-01-01 00:00:00', 'bps_udp', 'bps', 20000000, 1000, 30, 20000000, 5000, 0, 0, '{}', ''),
 ('inc-a1', 'update', 1, 'acme', '203.0.113.0/24', 'inbound', 'amplification', 'critical', '2026-11-20 11:30:00', '2026-11-20 11:32:00', '1970-01-01 00:00:00', 'bps_udp', 'bps', 100000000, 1000, 80, 100000000, 45000, 0, 0, '{}', ''),
 ('inc-a1', 'end', 2, 'acme', '203.0.113.0/24', 'inbound', 'amplification', 'critical', '2026-11-20 11:30:00', '2026-11-20 11:35:00', '2026-11-20 11:35:00', 'bps_udp', 'bps', 2000, 1000, 0.5, 100000000, 45000, 770000000, 1540000, '{}', 'below threshold'),
 ('inc-a2', 'start', 0, 'acme', '203.0.113.0/24', 'inbound', 'volumetric', 'warning', '2026-10-15 09:00:00', '2026-10-15 09:00:00', '1970-01-01 00:00:00', 'bps', 'bps', 5000000, 1000000, 12, 5000000, 1000, 0, 0, '{}', ''),
 ('inc-a2', 'end', 1, 'acme', '203.0.113.0/24', 'inbound', 'volumetric', 'warning', '2026-10-15 09:00:00', '2026-10-15 09:20:00', '2026-10-15 09:20:00', 'bps', 'bps', 900000, 1000000, 0.2, 5000000, 1000, 0, 0, '{}', ''),
 ('inc-g1', 'start', 0, 'globex', '198.51.100.0/24', 'outbound', 'syn_flood', 'warning', '2026-11-25 08:00:00', '2026-11-25 08:00:00', '1970-01-01 00:00:00', 'pps_syn', 'pps', 30000, 100, 40, 0, 30000, 0, 0, '{}', ''),
 ('inc-g2', 'start', 0, 'globex', '198.51.100.0/24', 'outbound', 'scan', 'info', '2026-11-02 03:00:00', '2026-11-02 03:00:00', '1970-01-01 00:00:00', 'flows', 'fps', 900, 20, 9, 0, 0, 0, 0, '{}', ''),
 ('inc-g2', 'end', 1, 'globex', '198.51.100.0/24', 'outbound', 'scan', 'info', '2026-11-02 03:00:00', '2026-11-02 03:10:00', '2026-11-02 03:10:00', 'flows', 'fps', 10, 20, 0.1, 0, 0, 0, 0, '{}', '')`,

	`INSERT INTO flowsentry.baselines (time, customer, subnet, direction, metric, expected, spread, observed, p95, samples) VALUES
 ('2026-11-20 10:00:00', 'acme', '203.0.113.0/24', 'inbound', 'bps', 100000, 10000, 800, 1200, 1000),
 ('2026-11-20 11:00:00', 'acme', '203.0.113.0/24', 'inbound', 'bps', 110000, 10000, 1600, 100000000, 1060),
 ('2026-11-20 12:00:00', 'acme', '203.0.113.0/24', 'inbound', 'bps', 120000, 10000, 2400, 2600, 1120),
 ('2026-11-20 12:00:00', 'acme', '203.0.113.0/24', 'inbound', 'pps', 50, 5, 3, 45000, 1120),
 ('2026-11-20 12:00:00', 'globex', '198.51.100.0/24', 'outbound', 'bps', 3000, 300, 3333, 3400, 700)`,
}
