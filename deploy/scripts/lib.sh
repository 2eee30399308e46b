# shellcheck shell=bash disable=SC2034  # the variables are used by the scripts that source this
# Shared helpers of services-up.sh / services-down.sh. Source it, don't run it.
#
# Everything these scripts create (jars, data, logs, pid files) lives under the repo's .run/.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEPLOY_DIR="$REPO_ROOT/deploy"
RUN_DIR="$REPO_ROOT/.run"

KAFKA_DIR="$RUN_DIR/kafka"
KAFKA_LIB="$KAFKA_DIR/lib"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_PID="$KAFKA_DIR/kafka.pid"
KAFKA_CDS="$KAFKA_DIR/kafka-cds.jsa"
KAFKA_HOST=127.0.0.1
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
KAFKA_HEAP="${KAFKA_HEAP:--Xms256m -Xmx512m}"

CH_DIR="$RUN_DIR/clickhouse"
CH_CONFIG="$CH_DIR/etc/config.xml"
CH_PID="$CH_DIR/clickhouse.pid"
CH_HOST=127.0.0.1
CH_PORT=9000
CH_HTTP_PORT=8123

log() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Seconds since $1 (an $EPOCHREALTIME value), one decimal.
elapsed() {
  local now=$EPOCHREALTIME
  awk -v a="$1" -v b="$now" 'BEGIN { printf "%.1f", b - a }'
}

# port_open HOST PORT: something accepts TCP connections there.
port_open() {
  timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# cmdline_of PID: the process's command line, arguments joined by spaces.
cmdline_of() {
  tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline"
}

# pid_matches PID MARK: PID is alive and its command line contains MARK.
# MARK is an absolute path under .run/, so a recycled pid never matches.
pid_matches() {
  local pid=$1 mark=$2
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ "$(cmdline_of "$pid")" == *"$mark"* ]]
}

# running_pid PIDFILE MARK: prints the pid if the pid file names a live process of ours.
running_pid() {
  local pid
  [[ -r "$1" ]] || return 1
  pid=$(<"$1")
  pid_matches "$pid" "$2" || return 1
  printf '%s\n' "$pid"
}

# alive PID: the process exists and is not a zombie. A thread-group leader whose main thread
# has exited shows state Z while its other threads still run (ClickHouse does that while it shuts
# down), so a Z process counts as gone only when no thread is left besides the leader.
alive() {
  local state threads
  kill -0 "$1" 2>/dev/null || return 1
  read -r state threads < <(awk '/^State:/ {s = $2} /^Threads:/ {t = $2} END {print s, t}' \
    "/proc/$1/status" 2>/dev/null)
  [[ $state != Z || ${threads:-1} -gt 1 ]]
}

# pids_with_mark MARK: every live process whose command line contains MARK
# (finds our servers even when a pid file went missing).
pids_with_mark() {
  local f pid last=${1##* }
  # cheap pre-filter on the mark's last word (arguments are NUL-separated in /proc), then verify
  while read -r f; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    [[ $pid == "$$" || $pid == "$BASHPID" ]] && continue
    pid_matches "$pid" "$1" && printf '%s\n' "$pid"
  done < <(grep -lsaF -- "$last" /proc/[0-9]*/cmdline)
  return 0
}

# find_running PIDFILE MARK: our server's pid, from the pid file or, if that is missing or stale,
# from the process table (the pid file is then rewritten).
find_running() {
  local pid
  pid=$(running_pid "$1" "$2") || pid=$(pids_with_mark "$2" | head -n 1)
  [[ -n $pid ]] || return 1
  printf '%s\n' "$pid" >"$1"
  printf '%s\n' "$pid"
}

# kafka_probe: the broker answers a Metadata (v0) request and lists at least one live broker.
# Pure bash: no JVM start, so it costs milliseconds.
kafka_probe() {
  local out
  out=$(timeout 3 bash -c '
    exec 3<>/dev/tcp/'"$KAFKA_HOST"'/'"$KAFKA_PORT"' || exit 1
    # size=16 | api_key=3 (Metadata) | api_version=0 | correlation_id=1 | client_id="fs" | topics=[] (all)
    printf "\x00\x00\x00\x10\x00\x03\x00\x00\x00\x00\x00\x01\x00\x02fs\x00\x00\x00\x00" >&3
    head -c 12 <&3 | od -An -v -tu1
  ' 2>/dev/null) || return 1
  # response: size(4) correlation_id(4) brokers count(4)
  read -r -a b <<<"$out"
  ((${#b[@]} == 12)) || return 1
  ((b[4] == 0 && b[5] == 0 && b[6] == 0 && b[7] == 1)) || return 1
  ((b[8] * 16777216 + b[9] * 65536 + b[10] * 256 + b[11] >= 1))
}

# ch_query SQL [ARGS...]: runs a query as `default` on the local server. Stdin closed and a
# timeout: the 18.16 client reads stdin when it is not a terminal, and never ends on some inputs.
ch_query() {
  timeout 10 clickhouse-client --host "$CH_HOST" --port "$CH_PORT" --query "$1" "${@:2}" </dev/null
}

# stop_pid NAME PID [GRACE_SECONDS]: SIGTERM, wait, then SIGKILL.
stop_pid() {
  local name=$1 pid=$2 grace=${3:-30} i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < grace * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  log "$name (pid $pid) still running after ${grace}s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  die "$name (pid $pid) survived SIGKILL"
}

# wait_released HOST PORT [LOCKFILE]: up to 10 s for the port to stop accepting connections and
# the flock(2) lock on LOCKFILE (ClickHouse's data/status) to be free. A stopped server can
# linger for a moment as a zombie that init has not reaped yet.
wait_released() {
  local host=$1 port=$2 lock=${3:-} i
  for ((i = 0; i < 100; i++)); do
    if ! port_open "$host" "$port" &&
      { [[ -z $lock || ! -e $lock ]] || flock -n "$lock" true 2>/dev/null; }; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# require_port_free NAME HOST PORT: fail with who holds the port if it is taken (after 10 s).
require_port_free() {
  local name=$1 host=$2 port=$3
  if ! wait_released "$host" "$port"; then
    ss -ltnp "sport = :$port" >&2 || true
    die "$name: $host:$port is already in use by another process (see above)"
  fi
}

# lock_services: services-up.sh and services-down.sh run one at a time (tests call them too).
# The lock is fd 9; the servers' launch subshells close it so that they never hold it.
lock_services() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.services.lock"
  if ! flock -n 9; then
    log "waiting for another services-up/services-down to finish"
    flock -w 900 9 || die "another services-up/services-down held $RUN_DIR/.services.lock for 15 min"
  fi
}

apt_install() {
  log "installing $* with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "$@" >/dev/null
}
