#!/usr/bin/env bash
# Runs every Go fuzz target of the repo for the given time each (default 10m).
# `make test` already runs the seed corpora (testdata/fuzz) of each target.
set -euo pipefail
cd "$(dirname "$0")/../.."
fuzztime=${1:-10m}
found=0
while IFS= read -r file; do
  dir=$(dirname "$file")
  for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
    found=$((found + 1))
    echo "fuzz: $dir $target for $fuzztime"
    (cd "$dir" && go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" .)
  done
done < <(grep -rlE '^func Fuzz' --include='*_test.go' schemas collector detector alerter benchmarks 2>/dev/null)
echo "fuzz: $found targets ran clean"
