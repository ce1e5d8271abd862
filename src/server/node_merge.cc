// Region merge at the node (docs/sharding.md §2): driving each frozen region led here to its
// end, and the merge checker that freezes small, idle regions into a neighbour. Both run in
// the 200 ms region check, on the coordinator executor's thread.
#include <fmt/format.h>

#include "common/logging.h"
#include "server/node.h"
#include "store/errors.h"
#include "store/keys.h"
#include "store/merge.h"

namespace micedb::server {

namespace {

spdlog::logger* Log() { return GetLogger("server"); }

}  // namespace

void Node::MergeRegion(const store::RegionDescriptor& source, const store::RegionDescriptor& target,
                       std::function<void(const Status&)> done) {
  store_->RunAdmin(store::PrepareMergeRequest(source, target),
                   [done = std::move(done)](const region::RegionResponse& r) {
                     done(r.has_error() ? store::ToStatus(r.error()) : Status::OK());
                   });
}

void Node::CheckMerges(const std::vector<store::RegionInfo>& regions,
                       const std::map<uint64_t, store::FlowCounts>& flow, int64_t now_ms) {
  std::map<uint64_t, const store::RegionInfo*> by_id;
  for (const auto& r : regions) by_id[r.descriptor.id()] = &r;
  // 1. Frozen regions led here: the CommitMerge goes to the target's leader once every member
  // holds the freeze (each target replica then finds the source's entries in its own log);
  // the rollback once the target's replica here shows an epoch past the freeze (the store
  // checks that again before proposing it).
  // Past the timeout with a member still without the freeze, the target refuses the merge.
  std::map<uint64_t, MergeDrive> drives;
  bool freezing = false;
  for (const auto& r : regions) {
    if (r.raft.role != raft::Role::kLeader || !r.descriptor.has_merging()) continue;
    freezing = true;
    const uint64_t id = r.descriptor.id();
    const uint64_t target = r.descriptor.merging().target().id();
    MergeDrive& drive = drives[id];
    if (auto it = merge_drives_.find(id); it != merge_drives_.end()) {
      drive = it->second;
    } else {
      drive.since_ms = now_ms;
    }
    if (now_ms - drive.last_ms < 500) continue;
    drive.last_ms = now_ms;
    auto t = by_id.find(target);
    const bool too_long = now_ms - drive.since_ms >= options_.region_merge_timeout_ms;
    store::MergeStep step =
        store::NextMergeStep(r, t != by_id.end() ? t->second : nullptr, too_long);
    auto report = [id, target](const region::RegionResponse& resp) {
      if (resp.has_error()) {
        Log()->info("region {}: merge into region {}: {}", id, target, resp.error().message());
      }
    };
    if (step.kind == store::MergeStep::Kind::kRollback) {
      Log()->info("region {}: region {} moved on without it; rolling the merge back", id, target);
      store_->RunAdmin(std::move(step.request), report);
      continue;
    }
    if (step.kind == store::MergeStep::Kind::kTransfer) {
      Log()->info("region {}: this node holds no replica of region {}; node {} leads the merge", id,
                  target, step.transfer_to.value());
      store_->TransferLeader(RegionId(id), step.transfer_to);
      continue;
    }
    if (step.kind == store::MergeStep::Kind::kRefuse) {
      Log()->warn(
          "region {}: a member has not taken the freeze after {} ms; asking region {} to refuse "
          "the merge",
          id, now_ms - drive.since_ms, target);
    } else if (step.kind != store::MergeStep::Kind::kCommit) {
      continue;
    }
    const NodeId leader =
        t != by_id.end() ? t->second->raft.leader : store_->LeaderOf(RegionId(target));
    if (leader == options_.id) {
      store_->RunAdmin(std::move(step.request), report);
    } else if (leader.valid()) {
      transport::ForwardRequest fr;
      *fr.mutable_request() = std::move(step.request);
      transport_->Forward(leader, std::move(fr), std::chrono::milliseconds(5000),
                          [report](Result<transport::ForwardResponse> r) {
                            if (r.ok()) report(r->response());
                          });
    }
  }
  merge_drives_ = std::move(drives);

  // 2. The merge checker: one small region led here that nobody has used for a while goes into
  // a neighbour with the same members, when both together stay well below the split size.
  if (!options_.region_merge) return;
  std::map<uint64_t, MergeCheck> checks;
  std::optional<std::pair<const store::RegionInfo*, const store::RegionInfo*>> pick;
  for (const auto& r : regions) {
    const uint64_t id = r.descriptor.id();
    if (store::IsMetaRegion(id) || r.raft.role != raft::Role::kLeader ||
        r.descriptor.has_merging()) {
      continue;
    }
    store::FlowCounts counts;
    if (auto f = flow.find(id); f != flow.end()) counts = f->second;
    MergeCheck& check = checks[id];
    auto old = merge_checks_.find(id);
    if (old == merge_checks_.end() || old->second.counts.keys_written != counts.keys_written ||
        old->second.counts.keys_read != counts.keys_read) {
      check = MergeCheck{counts, now_ms};
      continue;
    }
    check = old->second;
    if (pick || freezing || now_ms - check.idle_since_ms < options_.region_merge_idle_ms ||
        now_ms < check.next_size_check_ms) {
      continue;
    }
    constexpr int64_t kMergeSizeCheckMs = 5000;
    check.next_size_check_ms = now_ms + kMergeSizeCheckMs;
    auto size_of = [this](const store::RegionDescriptor& d) {
      return RegionDataSize(d).value_or(std::make_pair(UINT64_MAX, UINT64_MAX));
    };
    const auto [size, keys] = size_of(r.descriptor);
    if (size >= options_.region_merge_size || keys >= options_.region_merge_keys) continue;
    // Every member caught up, so that the freeze reaches them all at once.
    bool caught_up = true;
    for (uint64_t v : r.descriptor.conf_state().voters()) {
      auto it = r.raft.progress.find(NodeId(v));
      caught_up &= it != r.raft.progress.end() && it->second.match == r.raft.commit;
    }
    if (!caught_up) continue;
    // Not while another region is being merged into this one.
    bool targeted = false;
    for (const auto& o : regions) {
      targeted |= o.descriptor.has_merging() && o.descriptor.merging().target().id() == id;
    }
    if (targeted) continue;
    for (const auto& o : regions) {
      const store::RegionDescriptor& d = o.descriptor;
      if (!store::MergeProblem(r.descriptor, d).empty()) continue;
      const auto [tsize, tkeys] = size_of(d);
      if (tsize == UINT64_MAX || tkeys == UINT64_MAX ||
          size + tsize >= options_.region_split_size / 2 ||
          keys + tkeys >= options_.region_split_keys / 2) {
        continue;
      }
      pick = std::make_pair(&r, &o);
      break;
    }
  }
  merge_checks_ = std::move(checks);
  if (!pick) return;
  const store::RegionDescriptor source = pick->first->descriptor;
  const store::RegionDescriptor target = pick->second->descriptor;
  Log()->info("region {} is small and idle: merging it into region {}", source.id(), target.id());
  merges_started_++;
  MergeRegion(source, target, [id = source.id(), to = target.id()](const Status& st) {
    if (!st.ok())
      Log()->info("region {}: merge into region {} not started: {}", id, to, st.ToString());
  });
}

}  // namespace micedb::server
