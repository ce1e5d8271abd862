# The commands people type. The real build is CMake (see CMakePresets.json).
.PHONY: all deps build debug release run test unit lint format bench clean

DEPS_STAMP := build/.deps-ok
MICEDB := build/release/src/cli/micedb

all: release

# Installs missing Debian packages (apt-get); a no-op when everything is present.
deps:
	@scripts/install-deps

debug: deps
	@cmake --preset debug >/dev/null
	@cmake --build --preset debug

release: deps
	@cmake --preset release >/dev/null
	@cmake --build --preset release

build: release

# Starts a local three-node cluster with data under ./data/local; serves until Ctrl-C.
run: release
	@$(MICEDB) start-local --nodes 3 --data-dir ./data/local

# Every test tier that fits CI, built with ASan + UBSan: unit tests and the deterministic Raft
# simulation (ctest), then the tests that run real micedb processes (pytest, Debian's python3).
test: debug
	@ctest --preset debug
	@MICEDB_BIN=$(CURDIR)/build/debug/src/cli/micedb /usr/bin/python3 -m pytest -q tests/cluster

lint: deps
	@scripts/lint

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

bench: release
	@scripts/run-benchmarks

clean:
	rm -rf build
