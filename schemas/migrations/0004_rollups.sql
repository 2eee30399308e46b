-- Rollups of flowsentry.flows per minute and per hour, per customer, subnet,
-- direction and IP protocol: bytes, packets, flows, and the busiest second
-- of each minute (flows_1m) / busiest minute of each hour (flows_1h).
-- Analysts query the smallest table that answers (docs/sql-cookbook.md).
--
-- Fed by materialized views from the rows inserted into flows, so they count
-- exactly what flows holds: the sink never inserts a flow twice (replay
-- check), hence never counts it twice here.
--
-- Portable to 18.16 and current releases: SummingMergeTree sums bytes,
-- packets and flows, and merges each "...Map" nested table key by key (an
-- 18.x feature still supported), which keeps per-second sums exact across
-- inserts; the busiest second is arrayReduce('max', sumMap(...).2) at query
-- time. No SimpleAggregateFunction (19.8+), no separate per-second table.
-- Rows of unmerged parts are partial sums: always aggregate (sum, sumMap)
-- with GROUP BY when reading.
--
-- The views GROUP BY the second (minute) too and emit one-element arrays:
-- "[bytes]" then means the group's sum(bytes), the alias. The obvious
-- sumMap([second], [bytes]) next to "sum(bytes) AS bytes" is rejected (the
-- alias is substituted into sumMap: aggregate inside aggregate), and 18.16
-- views cannot read through a subquery that would rename the columns.
-- Fresh parts thus hold up to 60 rows per key and minute (hour) until
-- merges fold them.
CREATE TABLE IF NOT EXISTS flowsentry.flows_1m
(
    minute DateTime,
    customer String,
    subnet String,
    direction Enum8('unknown' = 0, 'inbound' = 1, 'outbound' = 2),
    proto UInt8,
    bytes UInt64,
    packets UInt64,
    flows UInt64,
    secondsMap Nested(second UInt8, bytes UInt64, packets UInt64)
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMMDD(minute)
ORDER BY (customer, subnet, direction, proto, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS flowsentry.flows_1m_mv TO flowsentry.flows_1m
AS SELECT
    toStartOfMinute(time_received) AS minute,
    customer, subnet, direction, proto,
    sum(bytes) AS bytes,
    sum(packets) AS packets,
    count() AS flows,
    [toSecond(time_received)] AS `secondsMap.second`,
    [bytes] AS `secondsMap.bytes`,
    [packets] AS `secondsMap.packets`
FROM flowsentry.flows
GROUP BY minute, customer, subnet, direction, proto, toSecond(time_received);

-- Hourly: monthly partitions (two years of day partitions would be 730
-- mostly tiny partitions); retention drops a month once all of it expired.
CREATE TABLE IF NOT EXISTS flowsentry.flows_1h
(
    hour DateTime,
    customer String,
    subnet String,
    direction Enum8('unknown' = 0, 'inbound' = 1, 'outbound' = 2),
    proto UInt8,
    bytes UInt64,
    packets UInt64,
    flows UInt64,
    minutesMap Nested(minute UInt8, bytes UInt64, packets UInt64)
)
ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (customer, subnet, direction, proto, hour);

CREATE MATERIALIZED VIEW IF NOT EXISTS flowsentry.flows_1h_mv TO flowsentry.flows_1h
AS SELECT
    toStartOfHour(time_received) AS hour,
    customer, subnet, direction, proto,
    sum(bytes) AS bytes,
    sum(packets) AS packets,
    count() AS flows,
    [toMinute(time_received)] AS `minutesMap.minute`,
    [bytes] AS `minutesMap.bytes`,
    [packets] AS `minutesMap.packets`
FROM flowsentry.flows
GROUP BY hour, customer, subnet, direction, proto, toMinute(time_received);
