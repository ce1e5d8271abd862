#include "tests/sim/apply_checker.h"

#include <fmt/format.h>

#include "tests/sim/digest.h"

namespace micedb::sim {

LogIndex ApplyChecker::applied(NodeId node) const {
  auto it = applied_.find(node);
  return it == applied_.end() ? LogIndex(0) : it->second;
}

void ApplyChecker::ObserveApply(NodeId node, LogIndex index, Term term, uint64_t content) {
  LogIndex& mine = applied_[node];
  if (index != mine + 1) {
    out_->push_back(
        {"state-machine-safety",
         fmt::format("node {} applied index {} right after index {}", node, index, mine)});
    mine = index;
    return;
  }
  mine = index;
  if (index.value() <= seq_.size()) {
    const Applied& a = seq_[index.value() - 1];
    if (a.term != term || a.content != content) {
      out_->push_back({"state-machine-safety",
                       fmt::format("node {} applied (index {}, term {}) but node {} applied "
                                   "(index {}, term {}){}",
                                   node, index, term, a.first, index, a.term,
                                   a.term == term ? " with other content" : "")});
    }
    return;
  }
  // A node only gets past the common sequence's end by applying its next entry; restores never
  // go past it (a violation reported by ObserveRestore).
  if (index.value() != seq_.size() + 1) return;
  uint64_t prev = seq_.empty() ? 0 : seq_.back().digest;
  seq_.push_back({term, content, ChainDigest(prev, term, content), node});
}

void ApplyChecker::ObserveRestore(NodeId node, LogIndex index, uint64_t digest) {
  applied_[node] = index;
  if (index.value() == 0) {
    if (digest != 0) {
      out_->push_back({"state-machine-safety",
                       fmt::format("node {} restored a non-empty state at index 0", node)});
    }
    return;
  }
  if (index.value() > seq_.size()) {
    out_->push_back({"state-machine-safety",
                     fmt::format("node {} restored a state at index {}, beyond every applied "
                                 "sequence (longest: {})",
                                 node, index, seq_.size())});
    return;
  }
  if (seq_[index.value() - 1].digest != digest) {
    out_->push_back({"state-machine-safety",
                     fmt::format("node {} restored a state at index {} that differs from the "
                                 "common sequence's state there",
                                 node, index)});
  }
}

}  // namespace micedb::sim
