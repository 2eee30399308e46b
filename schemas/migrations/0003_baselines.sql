-- Baseline snapshots published by the detector every few minutes, per subnet,
-- direction and metric: what capacity planners review.
CREATE TABLE IF NOT EXISTS flowsentry.baselines
(
    time DateTime,
    customer String,
    subnet String,
    direction Enum8('unknown' = 0, 'inbound' = 1, 'outbound' = 2),
    metric String,
    expected Float64,
    spread Float64,
    observed Float64,
    p95 Float64,
    samples UInt64
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMMDD(time)
ORDER BY (customer, subnet, direction, metric, time);
