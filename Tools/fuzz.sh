#!/usr/bin/env bash
# Coverage-guided fuzzing of every input decoder with libFuzzer (swiftc -sanitize=fuzzer,address):
# the packet parser and answer path, zone files, pool and cluster files, the admin state file,
# feedback-agent replies and the gossip decoder. Each runs FUZZ_SECONDS (default 60) from the
# seed corpus in Tools/Fuzz/corpus/<target> plus what earlier runs found (.build-fuzz/corpus).
# Prints executions and coverage per target; exits non-zero on the first crash, leaving the
# input in .build-fuzz/crash-<target>-* (replay it: MERIDIAN_FUZZ=<target> .build/debug/meridian-fuzz FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${FUZZ_SECONDS:-60}"
TARGETS="${FUZZ_TARGETS:-packet zone pool state agent gossip}"
swift build --build-path .build-fuzz --product meridian-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING 2>&1 | tail -1
for t in $TARGETS; do
  mkdir -p ".build-fuzz/corpus/$t"
  log=".build-fuzz/fuzz-$t.log"
  if ! MERIDIAN_FUZZ="$t" .build-fuzz/debug/meridian-fuzz -max_total_time="$SECONDS_EACH" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix=".build-fuzz/crash-$t-" -print_final_stats=1 ".build-fuzz/corpus/$t" "Tools/Fuzz/corpus/$t" > "$log" 2>&1; then
    echo "fuzz: $t: CRASH (see $log and .build-fuzz/crash-$t-*)"
    tail -n 40 "$log"
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1 || echo 'cov: ?')
  corp=$(ls ".build-fuzz/corpus/$t" | wc -l)
  echo "fuzz: $t: $runs executions in $SECONDS_EACH s, $cov, corpus $corp, no crash"
done
