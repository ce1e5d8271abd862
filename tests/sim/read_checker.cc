#include "tests/sim/read_checker.h"

#include <algorithm>

#include <fmt/format.h>

namespace micedb::sim {

void ReadChecker::ObserveAck(LogIndex index) { max_acked_ = std::max(max_acked_, index); }

uint64_t ReadChecker::BeginRead() {
  uint64_t id = next_id_++;
  pending_.emplace(id, max_acked_);
  return id;
}

void ReadChecker::ObserveServed(uint64_t id, NodeId node, LogIndex read_index, LogIndex applied) {
  auto it = pending_.find(id);
  if (it == pending_.end()) {
    out_->push_back({"read-linearizability",
                     fmt::format("node {} served read {}, which is not pending", node, id)});
    return;
  }
  LogIndex must_include = it->second;
  pending_.erase(it);
  ++served_;
  if (applied < must_include) {
    out_->push_back({"read-linearizability",
                     fmt::format("node {} served read {} (read index {}) from applied index {}, "
                                 "missing the write acknowledged at index {} before it began",
                                 node, id, read_index, applied, must_include)});
  }
}

}  // namespace micedb::sim
