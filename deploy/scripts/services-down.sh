#!/usr/bin/env bash
# Stops the local Kafka broker and ClickHouse server started by services-up.sh
# (SIGTERM, up to 30 s of grace, then SIGKILL). Idempotent: nothing running is fine.
#
#   services-down.sh           stop; keep data (the next services-up.sh is a warm start)
#   services-down.sh --purge   stop and delete all of .run/ except the downloaded Kafka jars
#                              (.run/kafka/lib): topics, tables, logs, rendered configs
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

purge=0
for arg in "$@"; do
  case $arg in
    --purge) purge=1 ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) die "unknown argument: $arg (usage: services-down.sh [--purge])" ;;
  esac
done

if [[ -d "$RUN_DIR" ]]; then
  lock_services
fi

# stop_service NAME PIDFILE MARK: the pid file's process, plus any other process whose command
# line holds MARK (an absolute path under .run/, so only servers of this checkout match).
stop_service() {
  local name=$1 pidfile=$2 mark=$3 t0=$EPOCHREALTIME pid pids=()
  pid=$(running_pid "$pidfile" "$mark") && pids+=("$pid")
  while read -r pid; do
    [[ -n $pid && " ${pids[*]} " != *" $pid "* ]] && pids+=("$pid")
  done < <(pids_with_mark "$mark")
  if ((${#pids[@]} == 0)); then
    printf '%-11s not running\n' "$name"
  else
    for pid in "${pids[@]}"; do
      stop_pid "$name" "$pid" 30
    done
    printf '%-11s stopped  pid %s  (%ss)\n' "$name" "${pids[*]}" "$(elapsed "$t0")"
  fi
  rm -f "$pidfile"
}

# Kafka first: its clients may still be talking to it; ClickHouse has no dependency on it.
stop_service kafka "$KAFKA_PID" "kafka.Kafka $KAFKA_PROPS"
stop_service clickhouse "$CH_PID" "--config-file=$CH_CONFIG"
# Return only once a new services-up.sh can bind the ports and lock the data directory again.
for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
  wait_released "$KAFKA_HOST" "$port" || log "kafka: $KAFKA_HOST:$port still accepts connections"
done
for port in "$CH_PORT" "$CH_HTTP_PORT"; do
  wait_released "$CH_HOST" "$port" "$CH_DIR/data/status" ||
    log "clickhouse: $CH_HOST:$port still accepts connections or data/status is still locked"
done

if ((purge)); then
  if [[ -d "$RUN_DIR" ]]; then
    find "$RUN_DIR" -mindepth 1 -maxdepth 1 ! -name kafka ! -name .services.lock -exec rm -rf {} +
    if [[ -d "$KAFKA_DIR" ]]; then
      find "$KAFKA_DIR" -mindepth 1 -maxdepth 1 ! -name lib -exec rm -rf {} +
    fi
  fi
  printf '%-11s removed %s (kept %s)\n' purge "$RUN_DIR" "${KAFKA_LIB#"$REPO_ROOT"/}"
fi
