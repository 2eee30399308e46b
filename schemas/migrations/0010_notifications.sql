-- Alerter audit trail: one row per incident lifecycle step (opened,
-- escalated, resolved, acknowledged), per notification attempt (receiver,
-- attempt number, outcome, error, HTTP/SMTP status, event-to-delivery
-- latency) and per silence change. Written by the alerter as
-- flowsentry_writer; read by the NOC and the console.
-- record: incident | notification | silence.
-- outcome for notifications: delivered, retry, failed, dead_letter,
-- silenced, inhibited, skipped; empty for other records.
-- Portable to ClickHouse 18.16: plain DateTime, String, no TTL.
CREATE TABLE IF NOT EXISTS flowsentry.notifications
(
    time DateTime,
    incident_id String,
    record Enum8('incident' = 1, 'notification' = 2, 'silence' = 3),
    action String,
    receiver String,
    receiver_kind String,
    group_key String,
    attempt UInt16,
    outcome String,
    error String,
    status UInt16,
    latency_ms UInt32,
    customer String,
    subnet String,
    class String,
    severity String,
    actor String,
    detail String,
    alerter String
)
ENGINE = MergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (customer, incident_id, time);
