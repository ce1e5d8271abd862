#include "store/merge.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "store/keys.h"

namespace micedb::store {

namespace {

bool SameMembers(const raft::ConfState& a, const raft::ConfState& b) {
  auto sorted = [](const auto& ids) {
    std::vector<uint64_t> v(ids.begin(), ids.end());
    std::sort(v.begin(), v.end());
    return v;
  };
  return sorted(a.voters()) == sorted(b.voters()) && sorted(a.learners()) == sorted(b.learners());
}

}  // namespace

region::RegionRequest AdminRequestFor(const RegionDescriptor& d) {
  region::RegionRequest req;
  req.set_format(region::FORMAT_V1);
  req.mutable_header()->set_region_id(d.id());
  *req.mutable_header()->mutable_epoch() = d.epoch();
  return req;
}

bool EpochNewer(const RegionEpoch& a, const RegionEpoch& b) {
  return a.version() > b.version() || a.conf_ver() > b.conf_ver();
}

std::string MergeProblem(const RegionDescriptor& source, const RegionDescriptor& target) {
  if (source.id() == target.id() || IsMetaRegion(source.id()) || IsMetaRegion(target.id())) {
    return fmt::format("region {} cannot merge into region {}", source.id(), target.id());
  }
  if (target.has_merging()) {
    return fmt::format("region {} is merging into region {} itself", target.id(),
                       target.merging().target().id());
  }
  const bool right_of = !target.end_key().empty() && target.end_key() == source.start_key();
  const bool left_of = !source.end_key().empty() && source.end_key() == target.start_key();
  if (!right_of && !left_of) {
    return fmt::format("regions {} and {} are not neighbours", source.id(), target.id());
  }
  if (!SameMembers(source.conf_state(), target.conf_state()) ||
      source.conf_state().learners_size() > 0 || source.conf_state().voters_size() == 0) {
    return fmt::format("regions {} and {} do not have the same voters (and no learners)",
                       source.id(), target.id());
  }
  return {};
}

MergeStep NextMergeStep(const RegionInfo& source, const RegionInfo* target, bool waited_too_long) {
  MergeStep step;
  const RegionDescriptor& s = source.descriptor;
  if (!s.has_merging() || source.raft.role != raft::Role::kLeader) return step;
  const MergeState& m = s.merging();
  // Another member's store may know what this one cannot: the leadership goes round.
  auto hand_over = [&] {
    std::vector<uint64_t> voters(s.conf_state().voters().begin(), s.conf_state().voters().end());
    std::sort(voters.begin(), voters.end());
    auto next = std::upper_bound(voters.begin(), voters.end(), source.raft.id.value());
    const uint64_t to = next != voters.end() ? *next : voters.front();
    if (to != source.raft.id.value()) {
      step.kind = MergeStep::Kind::kTransfer;
      step.transfer_to = NodeId(to);
    }
    return step;
  };
  // The target had this store among its members when the source froze (they had the same
  // members): gone from here, it has left since (its epoch moved on, which the stores still in
  // it can see), or is not made here yet (a split this store has not applied).
  if (target == nullptr || target->descriptor.conf_state().voters_size() == 0) return hand_over();
  if (EpochNewer(target->descriptor.epoch(), m.target().epoch())) {
    // Past the freeze by a snapshot: whether the merge happened first, this store cannot tell.
    if (EpochNewer(target->snapshot_epoch, m.target().epoch())) return hand_over();
    step.kind = MergeStep::Kind::kRollback;
    step.request = AdminRequestFor(s);
    step.request.mutable_admin()->mutable_rollback_merge()->set_index(m.index());
    return step;
  }
  for (uint64_t v : s.conf_state().voters()) {
    auto it = source.raft.progress.find(NodeId(v));
    if (it == source.raft.progress.end() || it->second.match.value() < m.index()) {
      if (waited_too_long) {
        // A member still without the freeze (its store down or cut off): the target moves its
        // epoch on, and the rollback follows once this store's target replica applied that.
        step.kind = MergeStep::Kind::kRefuse;
        step.request = AdminRequestFor(m.target());
        step.request.mutable_admin()->mutable_refuse_merge()->set_source_region_id(s.id());
      }
      return step;
    }
  }
  step.kind = MergeStep::Kind::kCommit;
  step.request = AdminRequestFor(m.target());
  *step.request.mutable_admin()->mutable_commit_merge()->mutable_source() = s;
  return step;
}

region::RegionRequest PrepareMergeRequest(const RegionDescriptor& source,
                                          const RegionDescriptor& target) {
  region::RegionRequest req = AdminRequestFor(source);
  *req.mutable_admin()->mutable_prepare_merge()->mutable_target() = target;
  return req;
}

}  // namespace micedb::store
