#include "tests/sim/log_checker.h"

#include <algorithm>

#include <fmt/format.h>

#include "tests/sim/digest.h"

namespace micedb::sim {

size_t LogChecker::KeyHash::operator()(const Key& k) const {
  return static_cast<size_t>(HashCombine(k.index, k.term));
}

void LogChecker::ObserveAppend(NodeId node, LogIndex index, Term term, Term prev_term,
                               uint64_t content) {
  auto [it, inserted] =
      seen_.emplace(Key{index.value(), term.value()}, Seen{prev_term, content, node});
  if (inserted) return;
  const Seen& first = it->second;
  if (first.content != content) {
    out_->push_back({"log-matching",
                     fmt::format("entry (index {}, term {}) on node {} differs in content from the "
                                 "one first seen on node {}",
                                 index, term, node, first.first_holder)});
  } else if (first.prev_term != prev_term) {
    out_->push_back(
        {"log-matching",
         fmt::format("entry (index {}, term {}) on node {} follows term {}, but on "
                     "node {} it follows term {}",
                     index, term, node, prev_term, first.first_holder, first.prev_term)});
  }
}

void LogChecker::ObserveCommitted(NodeId node, LogIndex index, Term term, Term observer_term) {
  if (index.value() == 0) return;
  if (committed_.size() < index.value()) committed_.resize(index.value());
  Committed& c = committed_[index.value() - 1];
  if (c.term.value() == 0) {
    c = {term, observer_term};
    return;
  }
  if (c.term != term) {
    out_->push_back({"committed-entry-changed",
                     fmt::format("node {} (term {}) has committed index {} with term {}, but it "
                                 "was committed earlier with term {}",
                                 node, observer_term, index, term, c.term)});
  }
  c.commit_term = std::min(c.commit_term, observer_term);
}

void LogChecker::ObserveOverwrite(NodeId node, LogIndex index, Term old_term, Term new_term,
                                  LogIndex commit) {
  if (old_term == new_term || index > commit) return;
  out_->push_back({"committed-entry-changed",
                   fmt::format("node {} overwrites its entry at index {} (term {}) with term {} "
                               "although its commit index is {}",
                               node, index, old_term, new_term, commit)});
}

void LogChecker::CheckLeaderLog(NodeId leader, Term term, LogIndex first, LogIndex last,
                                const TermLookup& term_at) {
  for (uint64_t i = std::max<uint64_t>(first.value(), 1); i <= committed_.size(); ++i) {
    const Committed& c = committed_[i - 1];
    if (c.term.value() == 0 || c.commit_term >= term) continue;
    if (LogIndex(i) > last) {
      out_->push_back({"leader-completeness",
                       fmt::format("leader {} of term {} lacks index {} (log ends at {}), "
                                   "committed with term {} by term {}",
                                   leader, term, i, last, c.term, c.commit_term)});
      return;
    }
    std::optional<Term> t = term_at(LogIndex(i));
    if (t.has_value() && *t != c.term) {
      out_->push_back({"leader-completeness",
                       fmt::format("leader {} of term {} has term {} at index {}, which was "
                                   "committed with term {} by term {}",
                                   leader, term, *t, i, c.term, c.commit_term)});
      return;
    }
  }
}

std::optional<Term> LogChecker::CommittedTerm(LogIndex index) const {
  if (index.value() == 0 || index.value() > committed_.size()) return std::nullopt;
  const Committed& c = committed_[index.value() - 1];
  if (c.term.value() == 0) return std::nullopt;
  return c.term;
}

}  // namespace micedb::sim
