#!/usr/bin/env bash
# Starts Flowsentry's local services and waits until they answer:
#   Kafka 3.9.1 (KRaft, one node)  127.0.0.1:9092 (controller 127.0.0.1:9093)
#   ClickHouse (Debian 18.16)      127.0.0.1:9000 native, 127.0.0.1:8123 HTTP
# then creates the Kafka topics and applies the ClickHouse migrations with
# schemas/cmd/flowsentry-schema when that command exists.
#
# Idempotent: services already running are left alone (a second call takes well under a second
# plus the schema step). Data, logs, jars and pid files live in the repo's .run/.
#
# Environment:
#   FLOWSENTRY_CH_WRITER_PASSWORD   password of flowsentry_writer  (default: writer-dev)
#   FLOWSENTRY_CH_ANALYST_PASSWORD  password of flowsentry_analyst (default: analyst-dev)
#   FLOWSENTRY_SKIP_SCHEMA=1        do not run flowsentry-schema
#   KAFKA_HEAP                      JVM heap flags of the broker (default: -Xms256m -Xmx512m)
#   KAFKA_NO_CDS=1                  start the broker without a class data sharing archive
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ $(id -u) == 0 ]] || die "run as root (ClickHouse is installed with apt-get and started as root)"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
lock_services

# ---------------------------------------------------------------- ClickHouse

CH_T0=
CH_STATE=

ch_render() {
  local writer_pw=${FLOWSENTRY_CH_WRITER_PASSWORD:-writer-dev}
  local analyst_pw=${FLOWSENTRY_CH_ANALYST_PASSWORD:-analyst-dev}
  local writer_sha analyst_sha f tmp
  writer_sha=$(printf '%s' "$writer_pw" | sha256sum | cut -d' ' -f1)
  analyst_sha=$(printf '%s' "$analyst_pw" | sha256sum | cut -d' ' -f1)
  mkdir -p "$CH_DIR"/{etc/users.d,data,tmp,user_files,format_schemas,log}
  tmp=$(mktemp "$CH_DIR/etc/.render.XXXXXX")
  # Only replace a file whose content changed: a running server reloads users on change.
  sed "s#@RUN_DIR@#$CH_DIR#g" "$DEPLOY_DIR/clickhouse/config.xml" >"$tmp"
  cmp -s "$tmp" "$CH_DIR/etc/config.xml" || cp "$tmp" "$CH_DIR/etc/config.xml"
  cmp -s "$DEPLOY_DIR/clickhouse/users.xml" "$CH_DIR/etc/users.xml" ||
    cp "$DEPLOY_DIR/clickhouse/users.xml" "$CH_DIR/etc/users.xml"
  for f in "$DEPLOY_DIR"/clickhouse/users.d/*.xml; do
    sed -e "s/@WRITER_SHA256@/$writer_sha/g" -e "s/@ANALYST_SHA256@/$analyst_sha/g" "$f" >"$tmp"
    cmp -s "$tmp" "$CH_DIR/etc/users.d/${f##*/}" || {
      cp "$tmp" "$CH_DIR/etc/users.d/${f##*/}"
      chmod 600 "$CH_DIR/etc/users.d/${f##*/}"
    }
  done
  rm -f "$tmp"
}

ch_launch() {
  CH_T0=$EPOCHREALTIME
  if ! command -v clickhouse-server >/dev/null || ! command -v clickhouse-client >/dev/null; then
    apt_install clickhouse-server clickhouse-client
  fi
  ch_render
  if find_running "$CH_PID" "--config-file=$CH_CONFIG" >/dev/null; then
    CH_STATE="already running"
    return
  fi
  require_port_free clickhouse "$CH_HOST" "$CH_PORT"
  require_port_free clickhouse "$CH_HOST" "$CH_HTTP_PORT"
  (
    exec 9>&-
    cd "$CH_DIR"
    exec setsid clickhouse-server --config-file="$CH_CONFIG" \
      >"$CH_DIR/log/stdout.log" 2>&1 </dev/null
  ) &
  echo $! >"$CH_PID"
  CH_STATE="started"
}

ch_wait() {
  local i pid
  for ((i = 0; i < 600; i++)); do
    # (just launched: its command line may not show the config path yet)
    pid=$(<"$CH_PID")
    alive "$pid" || {
      local rc=0
      wait "$pid" 2>/dev/null || rc=$?
      tail -n 20 "$CH_DIR/log/stdout.log" "$CH_DIR/log/clickhouse-server.err.log" >&2 2>/dev/null || true
      die "clickhouse-server exited during start-up, status $rc (logs: $CH_DIR/log/)"
    }
    if ch_query 'SELECT 1' >/dev/null 2>&1; then
      ch_query 'CREATE DATABASE IF NOT EXISTS flowsentry'
      printf '%-11s ready  native %s:%s http %s:%s  pid %s  (%s, %ss)\n' clickhouse \
        "$CH_HOST" "$CH_PORT" "$CH_HOST" "$CH_HTTP_PORT" "$pid" "$CH_STATE" "$(elapsed "$CH_T0")"
      return
    fi
    sleep 0.1
  done
  die "clickhouse: no answer to SELECT 1 after 60s (logs: $CH_DIR/log/)"
}

# ---------------------------------------------------------------- Kafka

KAFKA_T0=
KAFKA_STATE=

kafka_jars() {
  local want tmp
  want=$(sha256sum "$DEPLOY_DIR/kafka/pom.xml" | cut -d' ' -f1)
  [[ -f "$KAFKA_LIB/.pom.sha256" && "$(<"$KAFKA_LIB/.pom.sha256")" == "$want" ]] && return
  command -v mvn >/dev/null || apt_install maven
  log "kafka: fetching jars with mvn (log: $KAFKA_DIR/mvn.log)"
  tmp="$KAFKA_DIR/lib.tmp"
  rm -rf "$tmp"
  if ! timeout 900 mvn -q -B -f "$DEPLOY_DIR/kafka/pom.xml" \
    dependency:copy-dependencies -DoutputDirectory="$tmp" >"$KAFKA_DIR/mvn.log" 2>&1; then
    tail -n 30 "$KAFKA_DIR/mvn.log" >&2
    die "kafka: mvn failed (log: $KAFKA_DIR/mvn.log)"
  fi
  rm -rf "$KAFKA_LIB" "$KAFKA_CDS" "$KAFKA_CDS.jvm"
  mv "$tmp" "$KAFKA_LIB"
  printf '%s\n' "$want" >"$KAFKA_LIB/.pom.sha256"
}

kafka_java() {
  java -Dlog4j.configuration="file:$DEPLOY_DIR/kafka/tools-log4j.properties" -cp "$KAFKA_LIB/*" "$@"
}

# kafka_prepare: everything before the broker's own start (java, jars, config, storage format).
kafka_prepare() {
  KAFKA_T0=$EPOCHREALTIME
  mkdir -p "$KAFKA_DIR"
  if find_running "$KAFKA_PID" "kafka.Kafka $KAFKA_PROPS" >/dev/null; then
    KAFKA_STATE="already running"
    return
  fi
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  kafka_jars
  sed "s#@RUN_DIR@#$KAFKA_DIR#g" "$DEPLOY_DIR/kafka/server.properties" >"$KAFKA_PROPS"
  mkdir -p "$KAFKA_DIR/data"
  if [[ ! -f "$KAFKA_DIR/data/meta.properties" ]]; then
    local cluster_id
    # a Kafka Uuid: 16 random bytes, URL-safe base64 without padding
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    # (--opt=value: an id may start with "-", which a separate argument would turn into an option)
    kafka_java kafka.tools.StorageTool format --ignore-formatted \
      --cluster-id="$cluster_id" --config="$KAFKA_PROPS" >"$KAFKA_DIR/format.log" 2>&1 ||
      { cat "$KAFKA_DIR/format.log" >&2; die "kafka: storage format failed"; }
  fi
}

kafka_launch() {
  [[ $KAFKA_STATE == "already running" ]] && return
  require_port_free kafka "$KAFKA_HOST" "$KAFKA_PORT"
  require_port_free kafka "$KAFKA_HOST" "$KAFKA_CONTROLLER_PORT"
  # Class data sharing: the first run records the classes it loaded into an archive when the
  # JVM exits (services-down.sh), later starts map it instead of parsing ~100 jars again.
  # Saves ~3 s of CPU per start. The archive is only valid for the JVM build that wrote it.
  local cds jvm
  jvm=$(readlink -f "$(command -v java)")
  jvm="$jvm $(stat -c '%s %Y' "$(dirname "$jvm")/../lib/server/libjvm.so" 2>/dev/null || true)"
  if [[ ! -s "$KAFKA_CDS" || "$(cat "$KAFKA_CDS.jvm" 2>/dev/null)" != "$jvm" ]]; then
    rm -f "$KAFKA_CDS"
    printf '%s\n' "$jvm" >"$KAFKA_CDS.jvm"
    cds="-XX:ArchiveClassesAtExit=$KAFKA_CDS"
  else
    cds="-XX:SharedArchiveFile=$KAFKA_CDS"
  fi
  [[ ${KAFKA_NO_CDS:-0} == 1 ]] && cds=""
  # shellcheck disable=SC2086 # KAFKA_HEAP holds several flags
  (
    exec 9>&-
    cd "$KAFKA_DIR"
    exec setsid java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true $cds \
      -Dlog4j.configuration="file:$DEPLOY_DIR/kafka/log4j.properties" -Dkafka.logs.dir="$KAFKA_DIR" \
      -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_PROPS" \
      >"$KAFKA_DIR/stdout.log" 2>&1 </dev/null
  ) &
  echo $! >"$KAFKA_PID"
  KAFKA_STATE="started"
}

kafka_wait() {
  local i pid
  for ((i = 0; i < 1200; i++)); do
    pid=$(<"$KAFKA_PID")
    alive "$pid" || {
      local rc=0
      wait "$pid" 2>/dev/null || rc=$?
      tail -n 30 "$KAFKA_DIR/stdout.log" "$KAFKA_DIR/broker.log" >&2 2>/dev/null || true
      die "kafka exited during start-up, status $rc (log: $KAFKA_DIR/broker.log)"
    }
    if kafka_probe; then
      printf '%-11s ready  %s:%s (controller %s:%s)  pid %s  (%s, %ss)\n' kafka \
        "$KAFKA_HOST" "$KAFKA_PORT" "$KAFKA_HOST" "$KAFKA_CONTROLLER_PORT" "$pid" \
        "$KAFKA_STATE" "$(elapsed "$KAFKA_T0")"
      return
    fi
    sleep 0.1
  done
  die "kafka: no answer to a metadata request after 120s (log: $KAFKA_DIR/broker.log)"
}

# ---------------------------------------------------------------- schema

run_schema() {
  local cmd="$REPO_ROOT/schemas/cmd/flowsentry-schema" t0=$EPOCHREALTIME
  if [[ ${FLOWSENTRY_SKIP_SCHEMA:-0} == 1 ]]; then
    echo "schema      skipped (FLOWSENTRY_SKIP_SCHEMA=1)"
    return
  fi
  if [[ ! -e "$cmd" ]]; then
    echo "schema      skipped: schemas/cmd/flowsentry-schema does not exist yet"
    return
  fi
  command -v go >/dev/null || die "schema: go is not installed"
  (
    cd "$REPO_ROOT"
    go run ./schemas/cmd/flowsentry-schema topics --brokers "$KAFKA_HOST:$KAFKA_PORT"
    go run ./schemas/cmd/flowsentry-schema migrate --addr "$CH_HOST:$CH_PORT"
  ) || die "schema: flowsentry-schema failed"
  printf '%-11s done   topics + migrations  (%ss)\n' schema "$(elapsed "$t0")"
}

# Both servers boot in parallel; each line reports its own time from its first step
# (Kafka's includes fetching the jars and formatting the storage on a cold start).
T0=$EPOCHREALTIME
kafka_prepare
ch_launch
kafka_launch
ch_wait
kafka_wait
run_schema
printf '%-11s up in %ss\n' services "$(elapsed "$T0")"
