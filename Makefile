# Shortcuts; the scripts in Tools/ are the source of truth (they also run where make is missing).
.PHONY: run test build check bench clean

run:
	bash Tools/demo.sh

test:
	bash Tools/test.sh

build:
	bash Tools/setup.sh && swift build

check: build
	.build/debug/meridian check Zones

bench:
	bash Tools/bench.sh

clean:
	rm -rf .build
