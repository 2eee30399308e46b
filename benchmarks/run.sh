#!/usr/bin/env bash
# make bench: runs every Flowsentry benchmark, then benchmarks/report writes
# benchmarks/results/latest.json, report.md, the PNG plots and logs/.
#
#   QUICK=1   short runs for the CI smoke test (under 3 minutes); every
#             figure is then flagged "quick, not for comparison".
#   (default) the real figures, under 15 minutes on a 2-core machine.
#
# A benchmark that fails or hits its time limit is recorded as such in the
# report and the others still run; the script then exits 1. Figures that
# miss their target do not fail the script: the report says so.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

out=benchmarks/results
run=$out/tmp # ignored by git: this run's step logs and step table
rm -rf "$run"
mkdir -p "$run"

quick=0
[[ ${QUICK:-} == 1 ]] && quick=1

go build -o "$run/report" ./benchmarks/report || exit 1
# The load average at start goes into the report: the machine is shared.
"$run/report" machine -o "$run/machine.json" || exit 1

failed=()
# step NAME LIMIT COMMAND: runs COMMAND with bash from the repository root,
# killed after LIMIT (timeout signals the whole process group); output to
# the terminal and $run/NAME.txt; one line in $run/steps.tsv.
step() {
  local name=$1 limit=$2 cmd=$3 load t0 rc secs
  load=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(date +%s%N)
  echo "== bench $name (limit $limit): $cmd"
  timeout --kill-after=10s "$limit" bash -c "$cmd" 2>&1 | tee "$run/$name.txt"
  rc=${PIPESTATUS[0]}
  secs=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  printf '%s\t%d\t%s\t%s\t%s\n' "$name" "$rc" "$secs" "$load" "$cmd" >>"$run/steps.tsv"
  if [[ $rc != 0 ]]; then
    failed+=("$name (exit $rc)")
  fi
}

if ((quick)); then
  go_benchtime='-benchtime 20000x -count 1'
  fold_benchtime='-benchtime 2000000x -count 1'
  state_benchtime='-benchtime 1x -count 1'
  duration=2s
  # One store-only and one end-to-end case (-bench splits at top-level |
  # into alternatives, each matched level by level at the slashes).
  sink_env="QUICK=1 BENCH='InsertFlows/rollups=true/batch=100000\$|SinkEndToEnd/batch=100000\$' "
  sink_limit=90s
else
  go_benchtime='-benchtime 1s -count 3'
  fold_benchtime='-benchtime 3s -count 5'
  state_benchtime='-benchtime 3x -count 3'
  duration=8s
  sink_env=''
  sink_limit=480s
fi

# The sink benchmark needs Kafka and ClickHouse; services-up is idempotent
# (well under a second when they run) and never stops anything. Started
# first so a starting JVM does not load the machine during measurements.
if [[ -f deploy/scripts/services-up.sh ]]; then
  step services-up 300s 'bash deploy/scripts/services-up.sh'
fi

step collector-gobench 300s "go test -run '^\$' -bench . -benchmem $go_benchtime ./collector/..."
step detector-fold 240s "go test -run '^\$' -bench '^BenchmarkFold\$' -benchmem $fold_benchtime ./detector/engine"
step detector-state 240s "go test -run '^\$' -bench '^Benchmark(TargetMemory|TimeToStart)\$' -benchmem $state_benchtime ./detector/engine"

kafka_flag=''
# Real produce to the broker as an extra figure in full runs only (it adds
# a third collector run per protocol).
if ((!quick)) && (exec 3<>/dev/tcp/127.0.0.1/9092) 2>/dev/null; then
  kafka_flag=' -kafka 127.0.0.1:9092'
fi
step collector-vs-goflow2 300s "cd benchmarks && go run ./collector -duration $duration$kafka_flag -json results/tmp/collector-vs-goflow2.json"

if [[ -f benchmarks/sink/run.sh ]]; then
  step sink "$sink_limit" "${sink_env}bash benchmarks/sink/run.sh"
fi

# Detection quality (benchmarks/quality, README "Detection quality"): the
# labelled scenarios through the real collector and detector (bin/ from
# make build when present), the static baseline on the same flows, and the
# benign in-process run. QUICK: two small scenarios, half a benign day.
quality_flags='-benign-days 4'
quality_limit=360s
if ((quick)); then
  quality_flags='-quick'
  quality_limit=120s
fi
[[ -x bin/collector && -x bin/detector ]] && quality_flags+=' -bin ../bin'
step quality "$quality_limit" "cd benchmarks && go run ./quality/cmd/quality -repo .. -scenarios quality/scenarios -benign quality/scenarios/inproc $quality_flags -out results/tmp/quality.json -dir results/tmp/quality"

# End-to-end latency (benchmarks/latency): first attack datagram → START →
# notification → END → resolved, through the real collector, detector and
# alerter. QUICK: two attacks, short warm-up.
latency_flags=''
latency_limit=300s
if ((quick)); then
  latency_flags=' -quick'
  latency_limit=120s
fi
[[ -x bin/collector && -x bin/detector && -x bin/alerter ]] && latency_flags+=' -bin ../bin'
step e2e-latency "$latency_limit" "cd benchmarks && go run ./latency$latency_flags -json results/tmp/e2e-latency.json"

cp /proc/loadavg "$run/loadavg.end"
quick_flag=''
((quick)) && quick_flag=-quick
"$run/report" build -in "$run" -out "$out" $quick_flag || exit 1

# The logs behind the figures are kept with them.
rm -rf "$out/logs"
mkdir -p "$out/logs"
cp "$run"/*.txt "$run"/*.json "$run/steps.tsv" "$run/loadavg.end" "$out/logs/"

if ((${#failed[@]})); then
  echo "bench: failed steps: ${failed[*]} (see $out/report.md)" >&2
  exit 1
fi
