#!/usr/bin/env bash
# The Swift unit tests under AddressSanitizer and ThreadSanitizer, each in its own build folder
# (.build-asan, .build-tsan; both are ignored by git). Not part of the test command: a
# sanitizer build of every dependency takes minutes. Usage: bash Tools/sanitize.sh [address|thread]...
set -euo pipefail
cd "$(dirname "$0")/.."
bash Tools/setup.sh >/dev/null
for s in "${@:-address thread}"; do
  for kind in $s; do
    dir=".build-${kind:0:1}san"
    echo "sanitize: $kind: building in $dir"
    swift build --build-tests --build-path "$dir" --sanitize="$kind" 2>&1 | tail -1
    echo "sanitize: $kind: swift test"
    LSAN_OPTIONS="suppressions=$PWD/Tools/lsan.supp:print_suppressions=0" \
      swift test --skip-build --build-path "$dir" --sanitize="$kind" 2>&1 | tee "$dir/sanitize-$kind.log" | grep -E "Test run with|SUMMARY|ERROR:|WARNING: ThreadSanitizer" | sort | uniq -c
  done
done
