-- Raw flows, one row per flow record as produced to Kafka.
-- Portable to ClickHouse 18.16 and current releases (see docs/clickhouse.md):
--   addresses are FixedString(16) in IPv6 form (IPv4 as ::ffff:a.b.c.d),
--   times are DateTime (seconds), strings are plain String,
--   retention drops whole day partitions (no TTL clause on 18.16).
-- kafka_partition/kafka_offset/kafka_index identify the record in Kafka so that
-- the sink can skip what ClickHouse already holds after a crash.
CREATE TABLE IF NOT EXISTS flowsentry.flows
(
    time_received DateTime,
    time_flow_start DateTime,
    time_flow_end DateTime,
    flow_type Enum8('unknown' = 0, 'sflow5' = 1, 'netflow5' = 2, 'netflow9' = 3, 'ipfix' = 4),
    exporter FixedString(16),
    observation_domain_id UInt32,
    sequence_num UInt32,
    sampling_rate UInt32,
    in_if UInt32,
    out_if UInt32,
    src_addr FixedString(16),
    dst_addr FixedString(16),
    src_port UInt16,
    dst_port UInt16,
    proto UInt8,
    etype UInt16,
    tcp_flags UInt8,
    ip_tos UInt8,
    icmp_type UInt8,
    icmp_code UInt8,
    fragment_offset UInt16,
    src_as UInt32,
    dst_as UInt32,
    bytes UInt64,
    packets UInt64,
    customer String,
    subnet String,
    direction Enum8('unknown' = 0, 'inbound' = 1, 'outbound' = 2),
    kafka_partition UInt16,
    kafka_offset UInt64,
    kafka_index UInt32
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(time_received)
ORDER BY (customer, subnet, time_received);
