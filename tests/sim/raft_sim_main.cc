// raft_sim: runs the deterministic Raft simulation over many seeds (or one, to replay it).
//
//   raft_sim --seeds 1000 --steps 4000          seeds 1..1000, 3 and 5 nodes alternately
//   raft_sim --seed 42 --nodes 5 --verbose      replay one run, printing every event
//
// Prints a failure report (with the rerun command) for every failing seed, then a summary;
// exits 1 if any check failed.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/sim/simulation.h"

int main(int argc, char** argv) {
  CLI::App app{"Deterministic simulation of the MiceDB Raft core", "raft_sim"};
  uint64_t seeds = 100;
  uint64_t first_seed = 1;
  std::optional<uint64_t> seed;
  int nodes = 0;
  micedb::sim::SimOptions base;
  app.add_option("--seeds", seeds, "Number of seeds to run")->capture_default_str();
  app.add_option("--first-seed", first_seed, "First seed of the range")->capture_default_str();
  app.add_option("--seed", seed, "Run this one seed only (replays a failure)");
  app.add_option("--nodes", nodes, "3 or 5 (default: 3 for odd seeds, 5 for even ones)")
      ->check(CLI::IsMember({0, 3, 5}));
  app.add_option("--steps", base.steps, "Events in the fault phase of each run")
      ->capture_default_str();
  app.add_option("--liveness-bound", base.liveness_bound,
                 "Virtual time allowed for recovery after the faults stop")
      ->capture_default_str();
  app.add_option("--profile", base.profile,
                 "Force one fault mix: calm, lossy, partitions, "
                 "crashes, churn, membership or mixed (default: drawn from each seed)");
  app.add_flag("--verbose", base.verbose, "Print every event");
  CLI11_PARSE(app, argc, argv);

  std::vector<uint64_t> to_run;
  if (seed.has_value()) {
    to_run.push_back(*seed);
  } else {
    for (uint64_t s = first_seed; s < first_seed + seeds; ++s) to_run.push_back(s);
  }

  const auto start = std::chrono::steady_clock::now();
  uint64_t events = 0, violations = 0, committed = 0, elections = 0;
  std::vector<std::string> failed;
  for (uint64_t s : to_run) {
    micedb::sim::SimOptions o = base;
    o.seed = s;
    o.nodes = nodes != 0 ? nodes : (s % 2 == 1 ? 3 : 5);
    micedb::sim::SimResult r = micedb::sim::RunSimulation(o);
    events += r.stats.events;
    committed += r.stats.committed;
    elections += r.stats.leader_terms;
    violations += r.violations.size();
    if (!r.ok()) {
      std::fputs(r.FailureReport().c_str(), stdout);
      failed.push_back(r.RerunCommand());
    } else if (to_run.size() == 1) {
      fmt::print("profile: {}\n", r.profile);
    }
    if (to_run.size() == 1) {
      fmt::print(
          "trace hash {:016x}; {} events, {} leader terms, {} entries applied, {} writes "
          "acked, {} lost, {} reads served, {} crashes, {} snapshots installed, {} conf "
          "changes applied, recovery took {} time units\n",
          r.trace_hash, r.stats.events, r.stats.leader_terms, r.stats.committed, r.stats.acked,
          r.stats.lost, r.stats.reads_served, r.stats.crashes, r.stats.snapshots_installed,
          r.stats.conf_changes_applied, r.stats.liveness_time);
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print(
      "{} seeds, {} events, {} leader terms, {} entries applied, {} violations in {} "
      "seeds ({:.1f}s)\n",
      to_run.size(), events, elections, committed, violations, failed.size(), secs);
  for (const std::string& cmd : failed) fmt::print("  rerun: {}\n", cmd);
  return failed.empty() ? 0 : 1;
}
