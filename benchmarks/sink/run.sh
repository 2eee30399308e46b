#!/usr/bin/env bash
# Sink throughput into the local ClickHouse (make services-up first).
# The benchmarks live with the code they measure (alerter/sink,
# bench_integration_test.go):
#   BenchmarkInsertFlows   store only: rows/s per batch size, with/without rollup views
#   BenchmarkPipeline      decode (8 feeders) + batch + insert + replay check, no Kafka
#   BenchmarkSinkEndToEnd  Kafka (20 flows per message, 8 partitions) -> sink -> ClickHouse, commits included
# Each reports rows/s, sink-cores (this process) and clickhouse-cores (server, from
# /proc/<pid>/stat; pid from FLOWSENTRY_CH_PID or .run/clickhouse/clickhouse.pid).
# QUICK=1: fewer rows and one iteration (CI smoke run).
set -euo pipefail
cd "$(dirname "$0")/../.."
benchtime=2x
export FLOWSENTRY_BENCH_FLOWS=${FLOWSENTRY_BENCH_FLOWS:-1000000}
if [[ ${QUICK:-} == 1 ]]; then
  benchtime=1x
  export FLOWSENTRY_BENCH_FLOWS=100000
fi
go test -tags integration -run '^$' -bench "${BENCH:-InsertFlows|Pipeline|SinkEndToEnd}" -benchtime "$benchtime" \
  -timeout 30m ./alerter/sink/ | grep -v '^time='
