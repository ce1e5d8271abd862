// store_sim: runs the store simulation over many seeds (or one, to replay it).
//
//   store_sim --seeds 200                     seeds 1..200, 3 and 5 nodes alternately
//   store_sim --seed 42 --nodes 5 --verbose   replay one run, printing every event
//
// Prints a failure report (with the rerun command) for every failing seed, then a summary;
// exits 1 if any check failed. A seed that crashes the process (a store's fatal error, a
// sanitizer report) prints its rerun command on the way out.
#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <unistd.h>

#if __has_include(<sanitizer/common_interface_defs.h>)
#include <sanitizer/common_interface_defs.h>
#define MICEDB_HAVE_SANITIZER_CALLBACK 1
#endif

#include "tests/sim/store_sim.h"

namespace {

char g_running[256];  // the rerun command of the seed being run

void PrintRunning() {
  if (g_running[0] == '\0') return;
  const char prefix[] = "\nstore_sim died while running; rerun with: ";
  (void)!write(2, prefix, sizeof(prefix) - 1);
  (void)!write(2, g_running, strlen(g_running));
  (void)!write(2, "\n", 1);
}

void OnFatalSignal(int sig) {
  PrintRunning();
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

int Main(int argc, char** argv) {
  CLI::App app{"Deterministic simulation of the MiceDB store and router", "store_sim"};
  uint64_t seeds = 50;
  uint64_t first_seed = 1;
  std::optional<uint64_t> seed;
  int nodes = 0;
  micedb::sim::StoreSimOptions base;
  base.binary = argv[0];
  app.add_option("--seeds", seeds, "Number of seeds to run")->capture_default_str();
  app.add_option("--first-seed", first_seed, "First seed of the range")->capture_default_str();
  app.add_option("--seed", seed, "Run this one seed only (replays a failure)");
  app.add_option("--nodes", nodes, "3 or 5 (default: 3 for odd seeds, 5 for even ones)")
      ->check(CLI::IsMember({0, 3, 5}));
  app.add_option("--fault-ms", base.fault_ms, "Virtual milliseconds of faults and load per run")
      ->capture_default_str();
  app.add_option("--profile", base.profile,
                 "Force one fault mix: calm, lossy, partitions, crashes, mixed or membership");
  app.add_flag("--unsafe-local-reads", base.unsafe_local_reads,
               "Routers serve reads from local state (broken on purpose: the checks must fail)");
  app.add_flag("--meta-transfers", base.meta_transfers,
               "Leader transfers also move the meta region's leadership (see docs/simulation.md)");
  app.add_flag("--splits", base.splits, "A nemesis splits regions at random keys");
  app.add_flag("--merges", base.merges, "A nemesis merges regions into their neighbours");
  app.add_flag("--idle", base.idle,
               "Clients go quiet at times, so that regions hibernate under the nemesis");
  app.add_option("--clock-faults", base.clock_faults,
                 "Per-node clock rates and paused nodes: -1 drawn from the seed, 0 off, 1 on")
      ->check(CLI::IsMember({-1, 0, 1}))
      ->capture_default_str();
  app.add_flag("--verbose", base.verbose, "Print every event");
  CLI11_PARSE(app, argc, argv);

  std::signal(SIGABRT, OnFatalSignal);
  std::signal(SIGSEGV, OnFatalSignal);
#ifdef MICEDB_HAVE_SANITIZER_CALLBACK
  __sanitizer_set_death_callback(PrintRunning);
#endif

  std::vector<uint64_t> to_run;
  if (seed.has_value()) {
    to_run.push_back(*seed);
  } else {
    for (uint64_t s = first_seed; s < first_seed + seeds; ++s) to_run.push_back(s);
  }
  const auto start = std::chrono::steady_clock::now();
  uint64_t events = 0, acked = 0, reads = 0, crashes = 0, unavailable_applied = 0;
  std::vector<std::string> failed;
  for (uint64_t s : to_run) {
    micedb::sim::StoreSimOptions o = base;
    o.seed = s;
    o.nodes = nodes != 0 ? nodes : (s % 2 == 1 ? 3 : 5);
    micedb::sim::StoreSimResult probe;
    probe.options = o;
    std::snprintf(g_running, sizeof(g_running), "%s", probe.RerunCommand().c_str());
    micedb::sim::StoreSimResult r = micedb::sim::RunStoreSimulation(o);
    g_running[0] = '\0';
    events += r.stats.events;
    acked += r.stats.writes_acked;
    reads += r.stats.reads_ok;
    crashes += r.stats.crashes;
    unavailable_applied += r.stats.unavailable_applied;
    unavailable_applied += r.stats.unavailable_applied;
    if (r.stats.unavailable_applied > 0) {
      fmt::print("seed {}: {} writes the router reported Unavailable were applied; see: {}\n", s,
                 r.stats.unavailable_applied, r.RerunCommand());
    }
    if (!r.ok()) {
      std::fputs(r.FailureReport().c_str(), stdout);
      failed.push_back(r.RerunCommand());
    }
    if (to_run.size() == 1) {
      fmt::print(
          "profile: {}\ntrace hash {:016x}; {} events, {} writes acked, {} failed, {} reads "
          "checked, {} failed, {} crashes, {} transfers, {} conf changes, {} splits, {} merges "
          "({} committed, {} rolled back, {} refused; {} regions at the end), {} snapshots "
          "applied, {} "
          "replicas went to sleep ({} woken by a silent "
          "leader), "
          "{} Unavailable writes seen applied, recovery took {} ms, {} timestamps ({} calls "
          "failed), {} ids\n",
          r.profile, r.trace_hash, r.stats.events, r.stats.writes_acked, r.stats.writes_failed,
          r.stats.reads_ok, r.stats.reads_failed, r.stats.crashes, r.stats.transfers,
          r.stats.conf_changes, r.stats.splits, r.stats.merges, r.stats.merges_committed,
          r.stats.merges_rolled_back, r.stats.merges_refused, r.stats.regions,
          r.stats.snapshots_applied, r.stats.sleeps, r.stats.silent_leader_wakes,
          r.stats.unavailable_applied, r.stats.liveness_ms, r.stats.tso_timestamps,
          r.stats.tso_failed, r.stats.ids_allocated);
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print(
      "{} seeds, {} events, {} writes acked, {} reads checked, {} crashes, {} writes reported "
      "Unavailable but applied; {} failed ({:.1f}s)\n",
      to_run.size(), events, acked, reads, crashes, unavailable_applied, failed.size(), secs);
  for (const std::string& cmd : failed) fmt::print("  rerun: {}\n", cmd);
  return failed.empty() ? 0 : 1;
}

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    return 1;
  }
}
