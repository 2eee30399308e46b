-- Anomaly events, one row per event (start, update, end) of an incident:
-- the incident's timeline. ReplacingMergeTree keyed on (incident, seq) folds
-- an event re-delivered after a crash into one row; read with FINAL or
-- argMax(..., event_seq) for the incident's latest state.
-- ended_at is 0 (1970-01-01 00:00:00) while the incident is open.
CREATE TABLE IF NOT EXISTS flowsentry.alerts
(
    incident_id String,
    event_kind Enum8('start' = 1, 'update' = 2, 'end' = 3),
    event_seq UInt32,
    customer String,
    subnet String,
    direction Enum8('unknown' = 0, 'inbound' = 1, 'outbound' = 2),
    class Enum8('volumetric' = 1, 'syn_flood' = 2, 'udp_flood' = 3, 'icmp_flood' = 4, 'fragment_flood' = 5, 'amplification' = 6, 'carpet_bombing' = 7, 'scan' = 8, 'traffic_drop' = 9),
    severity Enum8('info' = 1, 'warning' = 2, 'critical' = 3),
    started_at DateTime,
    updated_at DateTime,
    ended_at DateTime,
    metric String,
    unit String,
    observed Float64,
    expected Float64,
    score Float64,
    peak_bps UInt64,
    peak_pps UInt64,
    total_bytes UInt64,
    total_packets UInt64,
    fingerprint String,
    reason String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(started_at)
ORDER BY (customer, incident_id, event_seq);
