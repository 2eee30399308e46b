#!/usr/bin/env bash
# Starts (or stops) a second, secured pair of servers next to the shared ones, for the security
# tests and for trying TLS/SASL by hand. The shared servers on 9092/9000 are never touched.
#   Kafka 3.9 (KRaft, one node)  SASL_SSL 127.0.0.1:19093 (TLS + SCRAM-SHA-512 or PLAIN),
#                                controller 127.0.0.1:19094 (loopback plaintext)
#   ClickHouse (Debian 18.16)    native TLS 127.0.0.1:19440 (tcp_port_secure), no plaintext port
#
#   secure-services.sh up   [DIR]   certificates (if DIR/tls/ca.pem is missing), render, format, start, wait
#   secure-services.sh down [DIR]   stop both (SIGTERM, 20 s grace, SIGKILL)
#   secure-services.sh env  [DIR]   print the client settings (YAML) for these servers
# DIR defaults to the repo's .run/secure. Everything (certificates, data, logs, pid files) is in DIR.
#
# Environment (defaults in brackets):
#   SECURE_KAFKA_PORT [19093]  SECURE_KAFKA_CONTROLLER_PORT [19094]  SECURE_CH_PORT [19440]
#   FLOWSENTRY_KAFKA_ADMIN_PASSWORD   the broker's own user "admin"        [random, kept in DIR]
#   SECURE_KAFKA_SCRAM_USERS   "name:password,..." SCRAM-SHA-512 users, set at format time only
#                              [svc:$FLOWSENTRY_KAFKA_PASSWORD or svc:svc-dev]
#   SECURE_KAFKA_PLAIN_USERS   "name:password,..." PLAIN users           [same as SCRAM]
#   SECURE_KAFKA_SUPER_USERS   "name,..." users the authorizer lets do anything, besides admin  [svc]
#                              (every other user needs ACLs: `flowsentry-schema acls -apply`)
#   FLOWSENTRY_CH_WRITER_PASSWORD / FLOWSENTRY_CH_ANALYST_PASSWORD  [writer-dev / analyst-dev]
# Requires the jars of services-up.sh (.run/kafka/lib), java and clickhouse-server; openssl only
# when it has to make the certificates. Root is not required.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cmd=${1:-}
DIR=${2:-$RUN_DIR/secure}
[[ $cmd == up || $cmd == down || $cmd == env ]] || { sed -n '2,23p' "$0"; exit 2; }
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
TLS_DIR=$DIR/tls
SK_DIR=$DIR/kafka
SCH_DIR=$DIR/clickhouse
SK_PORT=${SECURE_KAFKA_PORT:-19093}
SK_CTRL_PORT=${SECURE_KAFKA_CONTROLLER_PORT:-19094}
SCH_PORT=${SECURE_CH_PORT:-19440}
SK_PROPS=$SK_DIR/server.properties
SCH_CONFIG=$SCH_DIR/etc/config.xml

# ---------------------------------------------------------------- down

secure_down() {
  local name pidfile mark pid
  for name in kafka clickhouse; do
    if [[ $name == kafka ]]; then
      pidfile=$SK_DIR/kafka.pid mark="kafka.Kafka $SK_PROPS"
    else
      pidfile=$SCH_DIR/clickhouse.pid mark="--config-file=$SCH_CONFIG"
    fi
    # only a process whose command line names this DIR's config: never the shared servers
    if pid=$(running_pid "$pidfile" "$mark"); then
      stop_pid "secure $name" "$pid" 20
      printf '%-18s stopped pid %s\n' "secure $name" "$pid"
    else
      printf '%-18s not running\n' "secure $name"
    fi
    rm -f "$pidfile"
  done
}

# ---------------------------------------------------------------- certificates

# make_certs: a CA and a server certificate for 127.0.0.1 / localhost (openssl; the Go test
# makes its own with crypto/x509 before calling `up`). Keys are PKCS#8, files 0600.
make_certs() {
  [[ -f $TLS_DIR/ca.pem ]] && return
  command -v openssl >/dev/null || die "openssl is needed to make the certificates"
  mkdir -p "$TLS_DIR"
  chmod 700 "$TLS_DIR"
  (
    cd "$TLS_DIR"
    umask 077
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
      -subj "/CN=flowsentry dev CA" -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
      -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
      -extfile server.ext -out server.pem 2>/dev/null
    rm -f server.csr server.ext ca.srl
  )
  log "secure: made a CA and a server certificate in $TLS_DIR"
}

# ---------------------------------------------------------------- Kafka

kafka_java() {
  java -Dlog4j.configuration="file:$DEPLOY_DIR/kafka/tools-log4j.properties" -cp "$KAFKA_LIB/*" "$@"
}

# users_list VAR: "name:password,..." from the environment, or the default service user.
users_list() {
  local v=${!1:-}
  [[ -n $v ]] || v="svc:${FLOWSENTRY_KAFKA_PASSWORD:-svc-dev}"
  printf '%s\n' "$v"
}

kafka_up() {
  [[ -f $KAFKA_LIB/.pom.sha256 ]] || die "no Kafka jars in $KAFKA_LIB: run deploy/scripts/services-up.sh once"
  command -v java >/dev/null || die "java is not installed"
  if running_pid "$SK_DIR/kafka.pid" "kafka.Kafka $SK_PROPS" >/dev/null; then
    log "secure kafka: already running"
    return
  fi
  require_port_free "secure kafka" 127.0.0.1 "$SK_PORT"
  require_port_free "secure kafka" 127.0.0.1 "$SK_CTRL_PORT"
  mkdir -p "$SK_DIR/data"
  chmod 700 "$SK_DIR"
  # The keystore: private key then certificate chain, in one PEM file.
  (umask 077 && cat "$TLS_DIR/server.key" "$TLS_DIR/server.pem" >"$TLS_DIR/server-keystore.pem")

  local admin_pw plain="" pair name pw scram=()
  if [[ -n ${FLOWSENTRY_KAFKA_ADMIN_PASSWORD:-} ]]; then
    admin_pw=$FLOWSENTRY_KAFKA_ADMIN_PASSWORD
  elif [[ -f $SK_DIR/.admin ]]; then
    admin_pw=$(<"$SK_DIR/.admin")
  else
    admin_pw=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
    (umask 077 && printf '%s\n' "$admin_pw" >"$SK_DIR/.admin")
  fi
  IFS=, read -r -a pairs <<<"$(users_list SECURE_KAFKA_PLAIN_USERS)"
  for pair in "${pairs[@]}"; do
    name=${pair%%:*} pw=${pair#*:}
    plain+=" user_${name}=\"${pw}\""
  done
  scram+=(--add-scram "SCRAM-SHA-512=[name=admin,password=$admin_pw]")
  IFS=, read -r -a pairs <<<"$(users_list SECURE_KAFKA_SCRAM_USERS)"
  for pair in "${pairs[@]}"; do
    name=${pair%%:*} pw=${pair#*:}
    scram+=(--add-scram "SCRAM-SHA-512=[name=$name,password=$pw]")
  done

  # (awk, not sed: passwords may hold any character sed would treat as special)
  (umask 077 && awk -v k="$SK_DIR" -v t="$TLS_DIR" -v p="$SK_PORT" -v c="$SK_CTRL_PORT" \
    -v a="$admin_pw" -v u="$plain" '{
      gsub(/@KAFKA_DIR@/, k); gsub(/@TLS_DIR@/, t); gsub(/@CONTROLLER_PORT@/, c); gsub(/@PORT@/, p)
      i = index($0, "@ADMIN_PASSWORD@"); while (i) { $0 = substr($0, 1, i-1) a substr($0, i+16); i = index($0, "@ADMIN_PASSWORD@") }
      i = index($0, "@PLAIN_USERS@"); if (i) $0 = substr($0, 1, i-1) u substr($0, i+13)
      print }' "$DEPLOY_DIR/kafka/sasl/server.properties" >"$SK_PROPS")
  # Authorisation: KRaft's StandardAuthorizer, deny when no ACL matches. Super users: admin
  # (inter-broker, creates topics and ACLs), ANONYMOUS (the principal of the loopback plaintext
  # controller listener, which the broker half of this node uses to reach its controller half;
  # a multi-host cluster puts that listener on SSL and lists its principal instead) and
  # SECURE_KAFKA_SUPER_USERS. Services get ACLs: `flowsentry-schema acls -apply`.
  local supers="User:admin;User:ANONYMOUS" u
  IFS=, read -r -a pairs <<<"${SECURE_KAFKA_SUPER_USERS-svc}"
  for u in "${pairs[@]}"; do
    [[ -n $u ]] && supers+=";User:$u"
  done
  cat >>"$SK_PROPS" <<PROPS

# Added by secure-services.sh: authorisation.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=$supers
PROPS

  if [[ ! -f $SK_DIR/data/meta.properties ]]; then
    local cluster_id
    cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    # SCRAM users can only be added here (KRaft, before the first start) or later with
    # kafka-configs --alter --add-config 'SCRAM-SHA-512=[password=...]' --entity-type users.
    kafka_java kafka.tools.StorageTool format --ignore-formatted --cluster-id="$cluster_id" \
      --config="$SK_PROPS" "${scram[@]}" >"$SK_DIR/format.log" 2>&1 ||
      { cat "$SK_DIR/format.log" >&2; die "secure kafka: storage format failed"; }
  fi
  # Reuse the shared broker's class data sharing archive when it exists (same jars, same JVM):
  # saves seconds of CPU; -Xshare:auto falls back silently if it does not match.
  local cds=()
  [[ -s $KAFKA_CDS ]] && cds=(-XX:SharedArchiveFile="$KAFKA_CDS" -Xshare:auto)
  (
    exec 9>&-
    cd "$SK_DIR"
    exec setsid java -Xms128m -Xmx384m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true "${cds[@]}" \
      -Dlog4j.configuration="file:$DEPLOY_DIR/kafka/log4j.properties" -Dkafka.logs.dir="$SK_DIR" \
      -cp "$KAFKA_LIB/*" kafka.Kafka "$SK_PROPS" >"$SK_DIR/stdout.log" 2>&1 </dev/null
  ) &
  echo $! >"$SK_DIR/kafka.pid"
}

kafka_ready() {
  local i pid
  pid=$(<"$SK_DIR/kafka.pid")
  for ((i = 0; i < 900; i++)); do
    alive "$pid" || {
      tail -n 30 "$SK_DIR/stdout.log" "$SK_DIR/broker.log" >&2 2>/dev/null || true
      die "secure kafka exited during start-up (log: $SK_DIR/broker.log)"
    }
    # TLS + SASL are not speakable from bash: the broker's own "started" line plus an open port.
    if grep -qs 'Kafka Server started' "$SK_DIR/broker.log" && port_open 127.0.0.1 "$SK_PORT"; then
      printf '%-18s ready  SASL_SSL 127.0.0.1:%s  pid %s\n' "secure kafka" "$SK_PORT" "$pid"
      return
    fi
    sleep 0.1
  done
  die "secure kafka: not started after 90 s (log: $SK_DIR/broker.log)"
}

# ---------------------------------------------------------------- ClickHouse

ch_up() {
  command -v clickhouse-server >/dev/null || die "clickhouse-server is not installed"
  if running_pid "$SCH_DIR/clickhouse.pid" "--config-file=$SCH_CONFIG" >/dev/null; then
    log "secure clickhouse: already running"
    return
  fi
  require_port_free "secure clickhouse" 127.0.0.1 "$SCH_PORT"
  mkdir -p "$SCH_DIR"/{etc/users.d,data,tmp,user_files,format_schemas,log}
  chmod 700 "$SCH_DIR"
  local writer_sha analyst_sha f
  writer_sha=$(printf '%s' "${FLOWSENTRY_CH_WRITER_PASSWORD:-writer-dev}" | sha256sum | cut -d' ' -f1)
  analyst_sha=$(printf '%s' "${FLOWSENTRY_CH_ANALYST_PASSWORD:-analyst-dev}" | sha256sum | cut -d' ' -f1)
  sed -e "s#@CH_DIR@#$SCH_DIR#g" -e "s#@TLS_DIR@#$TLS_DIR#g" -e "s#@PORT@#$SCH_PORT#g" \
    "$DEPLOY_DIR/clickhouse/tls/config.xml" >"$SCH_CONFIG"
  cp "$DEPLOY_DIR/clickhouse/users.xml" "$SCH_DIR/etc/users.xml"
  for f in "$DEPLOY_DIR"/clickhouse/users.d/*.xml; do
    (umask 077 && sed -e "s/@WRITER_SHA256@/$writer_sha/g" -e "s/@ANALYST_SHA256@/$analyst_sha/g" \
      "$f" >"$SCH_DIR/etc/users.d/${f##*/}")
  done
  (
    exec 9>&-
    cd "$SCH_DIR"
    exec setsid clickhouse-server --config-file="$SCH_CONFIG" >"$SCH_DIR/log/stdout.log" 2>&1 </dev/null
  ) &
  echo $! >"$SCH_DIR/clickhouse.pid"
}

ch_ready() {
  local i pid
  pid=$(<"$SCH_DIR/clickhouse.pid")
  for ((i = 0; i < 600; i++)); do
    alive "$pid" || {
      tail -n 20 "$SCH_DIR/log/stdout.log" "$SCH_DIR/log/clickhouse-server.err.log" >&2 2>/dev/null || true
      die "secure clickhouse exited during start-up (logs: $SCH_DIR/log/)"
    }
    if grep -qs 'Ready for connections' "$SCH_DIR/log/clickhouse-server.log" && port_open 127.0.0.1 "$SCH_PORT"; then
      printf '%-18s ready  native TLS 127.0.0.1:%s  pid %s\n' "secure clickhouse" "$SCH_PORT" "$pid"
      return
    fi
    sleep 0.1
  done
  die "secure clickhouse: not ready after 60 s (logs: $SCH_DIR/log/)"
}

print_env() {
  cat <<EOF
# svc is a super user of this broker; services run as their own users with the ACLs of
# \`flowsentry-schema acls -apply\` (as admin, password in $SK_DIR/.admin), see docs/security.md.
kafka:
  brokers: ["127.0.0.1:$SK_PORT"]
  tls: {enabled: true, ca_file: $TLS_DIR/ca.pem}
  sasl: {mechanism: scram-sha-512, username: svc, password: {env: FLOWSENTRY_KAFKA_PASSWORD}}
clickhouse:
  addr: ["127.0.0.1:$SCH_PORT"]
  username: flowsentry_writer
  password: {env: FLOWSENTRY_CH_WRITER_PASSWORD}
  tls: {enabled: true, ca_file: $TLS_DIR/ca.pem}
EOF
}

case $cmd in
  down) secure_down ;;
  env) print_env ;;
  up)
    make_certs
    kafka_up
    ch_up
    ch_ready
    kafka_ready
    ;;
esac
