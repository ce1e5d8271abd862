// A broken invariant, as reported by the simulation's checkers.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace micedb::sim {

struct Violation {
  std::string check;   // which property: "election-safety", "log-matching", ...
  std::string detail;  // what was seen, with node ids, terms and indexes
  uint64_t event = 0;  // number of the event after which it was found (filled by the cluster)
  int64_t time = 0;    // virtual time of that event
};

using Violations = std::vector<Violation>;

}  // namespace micedb::sim
