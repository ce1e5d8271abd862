#include "tests/sim/simulation.h"

#include <fmt/format.h>

#include "tests/sim/cluster.h"

namespace micedb::sim {

std::string SimResult::RerunCommand() const {
  std::string cmd = fmt::format("raft_sim --seed {} --nodes {} --steps {}", options.seed,
                                options.nodes, options.steps);
  if (!options.profile.empty()) cmd += " --profile " + options.profile;
  return cmd;
}

std::string SimResult::FailureReport() const {
  std::string out = fmt::format("seed {} ({} nodes) failed; rerun with: {} --verbose\n",
                                options.seed, options.nodes, RerunCommand());
  out += fmt::format("profile: {}\n", profile);
  for (const Violation& v : violations) {
    out += fmt::format("violation [{}] after event #{} (t={}): {}\n", v.check, v.event, v.time,
                       v.detail);
  }
  if (!trace.empty()) {
    out += "last events:\n";
    for (const std::string& line : trace) out += "  " + line + "\n";
  }
  return out;
}

SimResult RunSimulation(const SimOptions& options) { return Cluster(options).Run(); }

}  // namespace micedb::sim
