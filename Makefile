# The commands people type. The real build is CMake (see CMakePresets.json).
.PHONY: all deps build debug release run test test-big unit soak lint format bench bench-quick bench-coordinator clean \
        fuzz fuzz-ci bench-txn

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
	@$(MAKE) --no-print-directory fuzz-ci
	@MICEDB_BIN=$(CURDIR)/build/debug/src/cli/micedb /usr/bin/python3 -m pytest -q -m "not big" tests/cluster

# The full-size runs of the cluster tests (tests marked `big`: 64-120 MiB requests, as in the
# hardening issue) against the release build; a few minutes. Run by hand.
test-big: release
	@MICEDB_BIN=$(CURDIR)/$(MICEDB) /usr/bin/python3 -m pytest -q -m big tests/cluster

# Fault injection, longer than CI: a 3-node (NODES) cluster under a seeded nemesis schedule
# (NEMESIS: kill,pause,wipe,membership,partition or all) with the register, set and counter
# workloads; DURATION seconds per run, new seeds until TOTAL seconds have passed. Each run's
# history, verdict and logs go to soak-results/<time>-seed<N>/ (docs/fault-testing.md).
SEED ?=
DURATION ?= 300
TOTAL ?= 0
NEMESIS ?= all
NODES ?= 3
EXTRA_ARGS ?=
soak: release
	@/usr/bin/python3 tests/cluster/faultrun.py --binary $(CURDIR)/$(MICEDB) \
	  $(if $(SEED),--seed $(SEED)) --duration $(DURATION) --total $(TOTAL) \
	  --nemesis $(NEMESIS) --nodes $(NODES) --extra-args="$(EXTRA_ARGS)"

# libFuzzer targets (docs/testing-fuzz.md), built with Clang into build/fuzz: each runs
# FUZZ_SECONDS from its seed corpus (fuzz/corpus/); new inputs go to build/fuzz/corpus/, and a
# crash's input to fuzz-results/. fuzz-ci is the short run `make test` does.
FUZZ_SECONDS ?= 300
FUZZ_CI_SECONDS ?= 30
fuzz: deps
	@scripts/run-fuzz --seconds $(FUZZ_SECONDS)

fuzz-ci: deps
	@scripts/run-fuzz --seconds $(FUZZ_CI_SECONDS)

lint: deps
	@scripts/lint

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

# MiceDB against etcd and Redis on loopback (bench/README.md): installs etcd, redis-server and
# gnuplot from Debian if missing, then writes bench/results/<date>/. The full sweep takes under
# 20 minutes; bench-quick (two client counts, short runs) about two.
bench: release
	@scripts/run-benchmarks

bench-quick: release
	@scripts/run-benchmarks --quick

# The coordinator's targets (docs/coordinator.md): TSO timestamps/s into one gateway from 64
# callers with p99 wait, and the router cache's share of routing on a node that holds no region.
bench-coordinator: release
	@/usr/bin/python3 bench/coordinator_bench.py --bin build/release/src/cli/micedb

# The transaction layer (issue 16, bench/README.md "Transactions"): one-key write transactions
# against raw SET at 32 clients, 4-key transactions across two regions at one client, and a
# bank at 16 clients, on 3-node clusters on loopback; bench/results/<date>-txn/. About 2.5
# minutes.
bench-txn: release
	@scripts/bench-txn

clean:
	rm -rf build
