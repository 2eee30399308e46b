#!/usr/bin/env bash
# Runs Flowsentry end to end on generated traffic (make demo; README in deploy/demo/).
#
#   demo.sh          start collector, detector, sink, alerter and the local receivers with
#                    the configs of deploy/demo/, run bin/demo (history replay, live traffic,
#                    attacks, checks), then stop everything. Exit status: bin/demo's.
#   KEEP=1 demo.sh   the same, but leave the services running and print their URLs
#   demo.sh stop     stop a demo left running with KEEP=1 (and delete its topics)
#
# Needs the binaries in bin/ (make build) and Kafka + ClickHouse up (make services-up).
# Logs, rendered configs and pid files: .run/demo/.
#
# Environment:
#   KEEP=1                      leave everything running
#   SLACK_WEBHOOK_URL           send Slack messages to this real incoming webhook
#   PAGERDUTY_ROUTING_KEY       send PagerDuty events to the real Events API with this key
#   FLOWSENTRY_CH_WRITER_PASSWORD / FLOWSENTRY_CH_ANALYST_PASSWORD   (default writer-dev / analyst-dev)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BIN="$REPO_ROOT/bin"
DEMO_DIR="$REPO_ROOT/deploy/demo"
OUT="$RUN_DIR/demo"
ETC="$OUT/etc"
SERVICES=(receivers collector sink detector alerter)

# stop_demo: stop every process a previous demo left (pid files in .run/demo whose process
# still runs one of our binaries), then delete that run's topics.
stop_demo() {
  local name pid pidfile
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do
    name=${SERVICES[i]}
    pidfile="$OUT/$name.pid"
    [[ -r $pidfile ]] || continue
    pid=$(<"$pidfile")
    if pid_matches "$pid" "$BIN/"; then
      stop_pid "$name" "$pid" 15
    fi
    rm -f "$pidfile"
  done
  if [[ -r $OUT/topic-prefix && -x $BIN/demo ]]; then
    "$BIN/demo" topics -delete -prefix "$(<"$OUT/topic-prefix")" -brokers "$KAFKA_HOST:$KAFKA_PORT" ||
      log "demo: could not delete topics $(<"$OUT/topic-prefix")*"
    rm -f "$OUT/topic-prefix"
  fi
}

if [[ ${1:-} == stop ]]; then
  stop_demo
  echo "demo stopped"
  exit 0
fi

for b in collector detector sink alerter demo; do
  [[ -x $BIN/$b ]] || die "$BIN/$b is missing: run make build"
done
kafka_probe || die "Kafka does not answer on $KAFKA_HOST:$KAFKA_PORT: run make services-up"
port_open "$CH_HOST" "$CH_HTTP_PORT" || die "ClickHouse does not answer on $CH_HOST:$CH_HTTP_PORT: run make services-up"

mkdir -p "$OUT"
stop_demo # a demo left running with KEEP=1 holds the ports

# port_free PORT: nothing listens on it (TCP or UDP).
port_free() {
  ! ss -Hltun "sport = :$1" 2>/dev/null | grep -q .
}
# pick_port PREFERRED: the preferred port when free, else the next free one above it.
pick_port() {
  local p=$1
  while ! port_free "$p"; do ((p++)); done
  printf '%s\n' "$p"
}
declare -A PORT
next=19102
for k in COLLECTOR_HTTP DETECTOR_HTTP SINK_HTTP ALERTER_HTTP RECEIVERS SMTP; do
  PORT[$k]=$(pick_port "$next")
  next=$((PORT[$k] + 1))
done
PORT[NETFLOW]=$(pick_port 12055)
PORT[IPFIX]=$(pick_port 14739)
PORT[SFLOW]=$(pick_port 16343)

RUN_ID=$(date -u +%H%M%S)-$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')
TOPIC_PREFIX="demo-$RUN_ID-"
RUN_OUT="$OUT" # state files live beside the logs

export FLOWSENTRY_CH_WRITER_PASSWORD=${FLOWSENTRY_CH_WRITER_PASSWORD:-writer-dev}
export FLOWSENTRY_CH_ANALYST_PASSWORD=${FLOWSENTRY_CH_ANALYST_PASSWORD:-analyst-dev}
DEMO_ALERTER_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export DEMO_ALERTER_TOKEN
# The demo program reads with the read-only token; the operator token is for
# a person in the console (silences) when KEEP=1 leaves everything running.
DEMO_OPERATOR_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export FLOWSENTRY_ALERTER_TOKENS="demo:read-only:$DEMO_ALERTER_TOKEN,demo-operator:operator:$DEMO_OPERATOR_TOKEN"
RECEIVERS_URL="http://127.0.0.1:${PORT[RECEIVERS]}"
local_slack=true local_pd=true
if [[ -n ${SLACK_WEBHOOK_URL:-} ]]; then
  export FLOWSENTRY_SLACK_NOC_WEBHOOK=$SLACK_WEBHOOK_URL
  local_slack=false
else
  export FLOWSENTRY_SLACK_NOC_WEBHOOK="$RECEIVERS_URL/slack/T0DEMO/B0DEMO/demo"
fi
if [[ -n ${PAGERDUTY_ROUTING_KEY:-} ]]; then
  export FLOWSENTRY_PAGERDUTY_ROUTING_KEY=$PAGERDUTY_ROUTING_KEY
  PAGERDUTY_URL=https://events.pagerduty.com/v2/enqueue
  local_pd=false
else
  export FLOWSENTRY_PAGERDUTY_ROUTING_KEY=demo-routing-key
  PAGERDUTY_URL="$RECEIVERS_URL/v2/enqueue"
fi

# Render deploy/demo/*.yaml into .run/demo/etc/ (@NAME@ placeholders).
rm -rf "$ETC"
mkdir -p "$ETC"
cp "$DEMO_DIR/inventory.yaml" "$DEMO_DIR/scenario.yaml" "$ETC/"
for f in collector detector sink alerter; do
  sed -e "s#@RUN_ID@#$RUN_ID#g" -e "s#@TOPIC_PREFIX@#$TOPIC_PREFIX#g" -e "s#@RUN_DIR@#$RUN_OUT#g" \
    -e "s#@DEMO_DIR@#$ETC#g" -e "s#@KAFKA@#$KAFKA_HOST:$KAFKA_PORT#g" -e "s#@CLICKHOUSE@#$CH_HOST:$CH_PORT#g" \
    -e "s#@COLLECTOR_HTTP_PORT@#${PORT[COLLECTOR_HTTP]}#g" -e "s#@DETECTOR_HTTP_PORT@#${PORT[DETECTOR_HTTP]}#g" \
    -e "s#@SINK_HTTP_PORT@#${PORT[SINK_HTTP]}#g" -e "s#@ALERTER_HTTP_PORT@#${PORT[ALERTER_HTTP]}#g" \
    -e "s#@SMTP_PORT@#${PORT[SMTP]}#g" -e "s#@PAGERDUTY_URL@#$PAGERDUTY_URL#g" \
    -e "s#@NETFLOW_PORT@#${PORT[NETFLOW]}#g" -e "s#@IPFIX_PORT@#${PORT[IPFIX]}#g" -e "s#@SFLOW_PORT@#${PORT[SFLOW]}#g" \
    "$DEMO_DIR/$f.yaml" >"$ETC/$f.yaml"
done
rm -f "$OUT"/*.log "$OUT"/alerter-state.json "$OUT"/alerter-deadletter.jsonl "$OUT"/collector-state.json

# Every config is validated before anything starts (errors name the key).
"$BIN/collector" -config "$ETC/collector.yaml" -check >/dev/null
"$BIN/detector" -config "$ETC/detector.yaml" -check >/dev/null
"$BIN/sink" -config "$ETC/sink.yaml" -check >/dev/null
"$BIN/alerter" -config "$ETC/alerter.yaml" -check >/dev/null

"$BIN/demo" topics -create -prefix "$TOPIC_PREFIX" -brokers "$KAFKA_HOST:$KAFKA_PORT" >/dev/null
printf '%s\n' "$TOPIC_PREFIX" >"$OUT/topic-prefix"

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  local rc=$?
  if [[ ${KEEP:-} == 1 ]]; then
    return
  fi
  stop_demo
  exit "$rc"
}
trap cleanup EXIT

# start NAME ARGS...: run bin/NAME in its own session, output to .run/demo/NAME.log.
start() {
  local name=$1 bin=$BIN/$2
  shift 2
  (
    exec 9>&- # never hold the services lock of lib.sh
    exec setsid "$bin" "$@" >"$OUT/$name.log" 2>&1 </dev/null
  ) &
  printf '%s\n' "$!" >"$OUT/$name.pid"
}
start receivers demo receivers -http "127.0.0.1:${PORT[RECEIVERS]}" -smtp "127.0.0.1:${PORT[SMTP]}"
start collector collector -config "$ETC/collector.yaml"
start sink sink -config "$ETC/sink.yaml"
start detector detector -config "$ETC/detector.yaml"
start alerter alerter -config "$ETC/alerter.yaml"
echo "demo $RUN_ID: services started (logs in .run/demo/), topics ${TOPIC_PREFIX}*"

rc=0
"$BIN/demo" run -scenario "$ETC/scenario.yaml" -inventory "$ETC/inventory.yaml" -detector-config "$ETC/detector.yaml" \
  -brokers "$KAFKA_HOST:$KAFKA_PORT" -topic-prefix "$TOPIC_PREFIX" \
  -netflow "127.0.0.1:${PORT[NETFLOW]}" -ipfix "127.0.0.1:${PORT[IPFIX]}" -sflow "127.0.0.1:${PORT[SFLOW]}" \
  -receivers "$RECEIVERS_URL" -collector "http://127.0.0.1:${PORT[COLLECTOR_HTTP]}" \
  -detector "http://127.0.0.1:${PORT[DETECTOR_HTTP]}" -sink "http://127.0.0.1:${PORT[SINK_HTTP]}" \
  -alerter "http://127.0.0.1:${PORT[ALERTER_HTTP]}" -clickhouse-http "http://$CH_HOST:$CH_HTTP_PORT" \
  -local-slack="$local_slack" -local-pagerduty="$local_pd" | tee "$OUT/demo.out" || rc=$?

for name in "${SERVICES[@]}"; do
  pid=$(<"$OUT/$name.pid")
  alive "$pid" || log "demo: $name exited early (log: .run/demo/$name.log)"
done

if [[ ${KEEP:-} == 1 ]]; then
  cat <<EOF

Everything is still running (KEEP=1). Stop it with: bash deploy/scripts/demo.sh stop
  console          http://127.0.0.1:${PORT[ALERTER_HTTP]}/   (paste a token: operator $DEMO_OPERATOR_TOKEN, read-only $DEMO_ALERTER_TOKEN)
  alerter API      http://127.0.0.1:${PORT[ALERTER_HTTP]}/api/v1/incidents   (header: Authorization: Bearer $DEMO_ALERTER_TOKEN)
  metrics          collector http://127.0.0.1:${PORT[COLLECTOR_HTTP]}/metrics  detector http://127.0.0.1:${PORT[DETECTOR_HTTP]}/metrics
                   sink http://127.0.0.1:${PORT[SINK_HTTP]}/metrics  alerter http://127.0.0.1:${PORT[ALERTER_HTTP]}/metrics
  local receivers  $RECEIVERS_URL/feed (Slack/PagerDuty), SMTP 127.0.0.1:${PORT[SMTP]}; messages in .run/demo/receivers.log
  flow exports     NetFlow v9 udp/127.0.0.1:${PORT[NETFLOW]}  IPFIX udp/127.0.0.1:${PORT[IPFIX]}  sFlow udp/127.0.0.1:${PORT[SFLOW]}
  ClickHouse       http://$CH_HOST:$CH_HTTP_PORT (flowsentry_analyst / \$FLOWSENTRY_CH_ANALYST_PASSWORD), topics ${TOPIC_PREFIX}*
EOF
fi
exit "$rc"
