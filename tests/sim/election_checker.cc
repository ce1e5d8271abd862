#include "tests/sim/election_checker.h"

#include <fmt/format.h>

namespace micedb::sim {

void ElectionChecker::ObserveLeader(NodeId node, Term term) {
  auto [it, inserted] = leader_of_.emplace(term, node);
  if (inserted || it->second == node || !reported_.insert(term).second) return;
  out_->push_back({"election-safety", fmt::format("two leaders in term {}: node {} and node {}",
                                                  term, it->second, node)});
}

}  // namespace micedb::sim
