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

# Starts a local node with data under ./data and serves until Ctrl-C.
run: release
	@$(MICEDB) start-local --data-dir ./data

# Every test tier that fits CI: unit tests and the deterministic Raft simulation, built with
# ASan + UBSan.
test: debug
	@ctest --preset debug

lint: deps
	@scripts/lint

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

bench: release
	@scripts/run-benchmarks

clean:
	rm -rf build
