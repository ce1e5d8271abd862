#include "raft/tracker.h"

#include <algorithm>

namespace micedb::raft {

namespace {
bool Contains(const std::vector<NodeId>& v, NodeId id) {
  return std::binary_search(v.begin(), v.end(), id);
}
bool Insert(std::vector<NodeId>* v, NodeId id) {
  auto it = std::lower_bound(v->begin(), v->end(), id);
  if (it != v->end() && *it == id) {
    return false;
  }
  v->insert(it, id);
  return true;
}
bool Erase(std::vector<NodeId>* v, NodeId id) {
  auto it = std::lower_bound(v->begin(), v->end(), id);
  if (it == v->end() || *it != id) {
    return false;
  }
  v->erase(it);
  return true;
}
}  // namespace

uint64_t QuorumValue(std::vector<uint64_t> values) {
  if (values.empty()) {
    return 0;
  }
  size_t k = values.size() / 2;  // 0-based position of the majority value, largest first
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end(),
                   std::greater<uint64_t>());
  return values[k];
}

void ProgressTracker::SetConfState(const ConfState& cs) {
  voters_.clear();
  learners_.clear();
  for (uint64_t v : cs.voters()) {
    Insert(&voters_, NodeId(v));
  }
  for (uint64_t l : cs.learners()) {
    if (!Contains(voters_, NodeId(l))) {
      Insert(&learners_, NodeId(l));
    }
  }
}

ConfState ProgressTracker::GetConfState() const {
  ConfState cs;
  for (NodeId v : voters_) {
    cs.add_voters(v.value());
  }
  for (NodeId l : learners_) {
    cs.add_learners(l.value());
  }
  return cs;
}

bool ProgressTracker::IsVoter(NodeId id) const { return Contains(voters_, id); }
bool ProgressTracker::IsLearner(NodeId id) const { return Contains(learners_, id); }

bool ProgressTracker::AddVoter(NodeId id) {
  bool promoted = Erase(&learners_, id);
  return Insert(&voters_, id) || promoted;
}

bool ProgressTracker::AddLearner(NodeId id) {
  bool demoted = Erase(&voters_, id);
  return Insert(&learners_, id) || demoted;
}

bool ProgressTracker::Remove(NodeId id) {
  bool a = Erase(&voters_, id);
  bool b = Erase(&learners_, id);
  return a || b;
}

void ProgressTracker::ResetProgress(LogIndex next) {
  progress_.clear();
  Sync(next, /*new_members_active=*/false);
}

void ProgressTracker::Sync(LogIndex next, bool new_members_active) {
  for (auto it = progress_.begin(); it != progress_.end();) {
    if (!IsMember(it->first)) {
      it = progress_.erase(it);
    } else {
      it->second.is_learner = IsLearner(it->first);
      ++it;
    }
  }
  auto add = [&](NodeId id, bool learner) {
    if (progress_.count(id)) {
      return;
    }
    auto [it, _] =
        progress_.emplace(id, FollowerProgress(next, max_inflight_, max_inflight_bytes_, learner));
    it->second.recent_active = new_members_active;
  };
  for (NodeId v : voters_) {
    add(v, false);
  }
  for (NodeId l : learners_) {
    add(l, true);
  }
}

FollowerProgress* ProgressTracker::Get(NodeId id) {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

const FollowerProgress* ProgressTracker::Get(NodeId id) const {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

uint64_t ProgressTracker::QuorumOf(
    const std::function<uint64_t(NodeId, const FollowerProgress&)>& value) const {
  std::vector<uint64_t> vals;
  vals.reserve(voters_.size());
  for (NodeId v : voters_) {
    const FollowerProgress* pr = Get(v);
    vals.push_back(pr ? value(v, *pr) : 0);
  }
  return QuorumValue(std::move(vals));
}

LogIndex ProgressTracker::CommittedIndex() const {
  // Hot path on every acknowledgement: avoid std::function and the heap for small groups.
  uint64_t buf[16] = {};
  std::vector<uint64_t> big;
  size_t n = voters_.size();
  uint64_t* vals = buf;
  if (n > 16) {
    big.resize(n);
    vals = big.data();
  }
  for (size_t k = 0; k < n; ++k) {
    const FollowerProgress* pr = Get(voters_[k]);
    vals[k] = pr ? pr->match.value() : 0;
  }
  if (n == 0) {
    return LogIndex(0);
  }
  size_t pos = n / 2;
  std::nth_element(vals, vals + pos, vals + n, std::greater<uint64_t>());
  return LogIndex(vals[pos]);
}

bool ProgressTracker::QuorumActive(NodeId self) const {
  size_t active = 0;
  for (NodeId v : voters_) {
    const FollowerProgress* pr = Get(v);
    if (v == self || (pr && pr->recent_active)) {
      ++active;
    }
  }
  return active >= voters_.size() / 2 + 1;
}

void ProgressTracker::RecordVote(NodeId id, bool granted) { votes_.emplace(id, granted); }

VoteResult ProgressTracker::TallyVotes(size_t* granted, size_t* rejected) const {
  size_t yes = 0, no = 0;
  for (NodeId v : voters_) {
    auto it = votes_.find(v);
    if (it == votes_.end()) {
      continue;
    }
    (it->second ? yes : no)++;
  }
  if (granted) {
    *granted = yes;
  }
  if (rejected) {
    *rejected = no;
  }
  size_t q = voters_.size() / 2 + 1;
  if (yes >= q) {
    return VoteResult::kWon;
  }
  if (no > voters_.size() - q) {
    return VoteResult::kLost;
  }
  return VoteResult::kPending;
}

}  // namespace micedb::raft
