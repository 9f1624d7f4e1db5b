# Meridian: the two commands a newcomer needs are `make run` and `make test`.
.PHONY: setup build release run test unit integration check bench clean

PORT ?= 5300
PYTEST_TIMEOUT ?= 900

setup:
	@bash Tools/setup.sh

build: setup
	swift build

release: setup
	swift build -c release --product meridian

## Build, then serve the example zones on 127.0.0.1 and ::1, port $(PORT). Try:
##   dig @127.0.0.1 -p 5300 www.gslb.example.com
run: release
	.build/release/meridian check Zones
	.build/release/meridian serve --zones Zones --listen 127.0.0.1:$(PORT) --listen [::1]:$(PORT) \
	    --identity meridian-demo --nsid meridian-demo

## Every test: Swift unit tests, zone checks, integration tests against the real binary.
test: setup
	swift build --build-tests
	swift test
	.build/debug/meridian check Zones
	cd Tests/Integration && MERIDIAN_BIN=$(CURDIR)/.build/debug/meridian timeout $(PYTEST_TIMEOUT) python3 -m pytest -q -p no:cacheprovider

check: build
	.build/debug/meridian check Zones

## dnsperf against the release build and a reference server (gdnsd) in the same run.
bench: release
	bash Tools/bench.sh

clean:
	rm -rf .build
