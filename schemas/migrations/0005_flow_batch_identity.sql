-- Batch identity of every flow row: FlowBatch.producer_id and sequence
-- (schemas/proto/flow.proto). kafka-go has no idempotent producer, so a
-- batch whose acknowledgement was lost is written to Kafka again, at another
-- offset. The sink drops such copies by (producer_id, sequence) in memory
-- and, after it is (re)assigned a partition, its replay check also looks for
-- rows with the same (producer_id, sequence, kafka_index) that an earlier run
-- stored at another offset (docs/clickhouse.md). 0 = no identity: rows of
-- collectors that predate it, and every row written before this migration.
--
-- One statement, so both columns come or neither. ClickHouse 18.16 has no
-- ADD COLUMN IF NOT EXISTS: should the runner die after this ALTER and before
-- recording it, the next run stops with "column with this name already
-- exists" (code 44); record the migration by hand (docs/schemas.md).
ALTER TABLE flowsentry.flows
    ADD COLUMN producer_id UInt64 DEFAULT 0,
    ADD COLUMN sequence UInt64 DEFAULT 0;
