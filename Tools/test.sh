#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, runs the Swift unit tests, checks the
# example zones, then the integration tests against the real binary on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash Tools/setup.sh
swift build --build-tests
swift test
.build/debug/meridian check Zones
cd Tests/Integration
MERIDIAN_BIN="$PWD/../../.build/debug/meridian" timeout "${PYTEST_TIMEOUT:-900}" python3 -m pytest -q -p no:cacheprovider
