#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, runs the Swift unit tests, checks the
# example zones, fuzzes every decoder briefly, then the integration tests against the real
# binary on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Tools/setup.sh
swift build --build-tests
swift test
.build/debug/meridian check Zones
# A short bounded fuzzing pass over every input decoder (Tools/fuzz.sh; longer runs: FUZZ_SECONDS).
FUZZ_SECONDS="${FUZZ_SECONDS:-10}" bash Tools/fuzz.sh
cd Tests/Integration
MERIDIAN_BIN="$PWD/../../.build/debug/meridian" timeout "${PYTEST_TIMEOUT:-900}" python3 -m pytest -q -p no:cacheprovider
