// Applying committed entries and serving reads (store.h, steps 3-4 of a round).
#include <algorithm>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "common/pulse.h"
#include "store/apply.h"
#include "store/errors.h"
#include "store/keys.h"
#include "store/region_peer.h"
#include "store/store.h"

namespace micedb::store {

using storage::Cf;

namespace {
spdlog::logger* Log() { return GetLogger("store"); }
}  // namespace

void Store::ApplyCommitted(std::vector<Work>& work, storage::WriteBatch* awb, Replies* replies,
                           bool* info_changed_out) {
  bool info_changed = false;
  // 3. Apply committed entries: data and applied index together.
  for (auto& w : work) {
    RegionPeer* p = w.peer;
    // Taken over by a merge applied earlier in the round (it caught up then): nothing of it
    // may be written any more.
    if (w.rd.committed_entries.empty() || p->merged_into != 0) continue;
    std::optional<Applier> applier;
    for (const auto& e : w.rd.committed_entries) {
      Pulse();  // a long apply still heartbeats (PulseLeaders)
      counters_.entries_committed++;
      if (e.index() <= p->apply.applied_index()) continue;
      region::RegionResponse result = ApplyEntry(p, e, awb, applier, &info_changed);
      auto it = p->proposals.find(e.index());
      if (it != p->proposals.end()) {
        if (it->second.term == e.term()) {
          replies->emplace_back(std::move(it->second.done), std::move(result));
        } else {
          counters_.proposals_failed++;
          replies->emplace_back(std::move(it->second.done), StaleCommandResponse());
        }
        p->proposals.erase(it);
      }
    }
    EndApplier(p, applier);
    p->apply.set_truncated_index(p->storage.truncated_index());
    p->apply.set_truncated_term(p->storage.truncated_term());
    awb->Put(Cf::kRaft, ApplyStateKey(p->id()), p->apply.SerializeAsString());
  }
  if (info_changed) *info_changed_out = true;
}

void Store::EndApplier(RegionPeer* p, std::optional<Applier>& applier) {
  if (!applier) return;
  p->dedup_horizon_ms = std::max(p->dedup_horizon_ms, applier->horizon_ms());
  dedup_written_ += applier->records_written();
  p->dedup_oldest_ms = std::min(p->dedup_oldest_ms, applier->oldest_written_ms());
  p->dedup_new_oldest_ms = std::min(p->dedup_new_oldest_ms, applier->oldest_written_ms());
  applier.reset();
}

region::RegionResponse Store::ApplyEntry(RegionPeer* p, const raft::Entry& e,
                                         storage::WriteBatch* awb, std::optional<Applier>& applier,
                                         bool* info_changed) {
  region::RegionResponse result;
  if (e.type() == raft::ENTRY_CONF_CHANGE) {
    // A membership change bumps conf_ver, which data requests do not check: the round's
    // applier (holding the descriptor by reference) stays valid.
    if (!ApplyConfChange(p, e, awb)) {
      result = ServerBusyResponse(
          fmt::format("region {}: the membership change was not made (the region is frozen "
                      "for a merge, or the entry is damaged)",
                      p->id()),
          100);
    }
    *info_changed = true;
    p->node->SendCommitNow();  // the followers apply it too, now (lazy_commit)
  } else if (!e.data().empty()) {
    if (!applier) applier.emplace(sm_, p->desc, engine_, awb);
    auto waiting = p->proposals.find(e.index());
    const bool answering = waiting != p->proposals.end() && waiting->second.term == e.term();
    region::AdminRequest admin;
    result = applier->Apply(e.data(), LogIndex(e.index()), answering, &admin);
    if (admin.cmd_case() != region::AdminRequest::CMD_NOT_SET) {
      // The round goes on over the new range: its earlier writes (in the batch only) and dedup
      // records stay visible to the entries after a split or a merge.
      if (admin.has_split()) {
        result = ApplySplit(p, admin.split(), e, awb);
      } else if (admin.has_prepare_merge()) {
        result = ApplyPrepareMerge(p, admin.prepare_merge(), e, awb);
      } else if (admin.has_commit_merge()) {
        result = ApplyCommitMerge(p, admin.commit_merge(), e, awb);
        if (!result.has_error()) {
          // The target's next entries read the source's keys: what other appliers wrote this
          // round (the source's catch-up, its earlier entries) is in the batch only, beyond
          // this applier's view. Write it now, and start the next entry on a fresh applier.
          EndApplier(p, applier);
          FlushApplyBatch(awb);
        }
      } else if (admin.has_rollback_merge()) {
        result = ApplyRollbackMerge(p, admin.rollback_merge(), e, awb);
      } else if (admin.has_refuse_merge()) {
        result = ApplyRefuseMerge(p, admin.refuse_merge(), e, awb);
      }
      if (applier) applier->RegionChanged();
      *info_changed = true;
      // The followers apply it now rather than at the next heartbeat (lazy_commit): a split
      // is applied everywhere within a round trip, and a merge's steps wait on followers.
      p->node->SendCommitNow();
    }
    if (result.has_error()) {
      counters_.requests_refused++;
      if (result.error().has_epoch_not_match()) AddSplitChildren(p, &result);
    }
    counters_.entries_applied++;
  }
  p->apply.set_applied_index(e.index());
  p->apply.set_applied_term(e.term());
  return result;
}

void Store::ServeApplied(std::vector<Work>& work, Replies* replies) {
  for (auto& [done, result] : *replies) done(std::move(result));
  replies->clear();

  // 4. Reads: read indexes learned, then reads whose index is applied.
  for (auto& w : work) {
    RegionPeer* p = w.peer;
    for (auto& rs : w.rd.read_states) {
      auto it = p->reads_waiting_index.find(rs.request_ctx);
      if (it == p->reads_waiting_index.end()) continue;
      for (auto& r : it->second) p->reads_waiting_apply.emplace(rs.index.value(), std::move(r));
      p->reads_waiting_index.erase(it);
    }
  }
  // Only a replica with reads waiting, or one that did something this round, can have
  // dropped or servable reads (serving one twice does nothing the second time).
  auto serve = [this](RegionPeer* p) {
    for (auto& ctx : p->node->TakeDroppedReads()) {
      auto it = p->reads_waiting_index.find(ctx);
      if (it == p->reads_waiting_index.end()) continue;
      for (auto& r : it->second) r.done(NotLeaderResponse(p->id(), 0));
      p->reads_waiting_index.erase(it);
    }
    ServeAppliedReads(p);
  };
  for (auto& w : work) serve(w.peer);
  std::vector<uint64_t> listed;
  listed.swap(reads_waiting_);
  for (uint64_t id : listed) {
    RegionPeer* p = FindPeer(id);
    if (p == nullptr || !p->reads_listed) continue;
    p->reads_listed = false;
    serve(p);
    ListReads(p);
  }
  for (auto& w : work) ListReads(w.peer);
}

void Store::ListReads(RegionPeer* p) {
  if (p->reads_listed || (p->reads_waiting_index.empty() && p->reads_waiting_apply.empty())) {
    return;
  }
  p->reads_listed = true;
  reads_waiting_.push_back(p->id());
}

void Store::ServeAppliedReads(RegionPeer* p) {
  while (!p->reads_waiting_apply.empty()) {
#ifndef MICEDB_STORE_BUG_READ_BEFORE_APPLY  // defined only in the store sim's broken copy
    if (p->reads_waiting_apply.begin()->first > p->apply.applied_index()) break;
#endif
    auto node = p->reads_waiting_apply.extract(p->reads_waiting_apply.begin());
    counters_.reads++;
    region::RegionResponse resp = ServeRead(sm_, p->desc, engine_, nullptr, node.mapped().request);
    if (resp.has_error()) counters_.requests_refused++;
    CountRead(p->id(), node.mapped().request, resp);
    node.mapped().done(std::move(resp));
  }
}

void Store::SweepDedup() {
  // Records live between the window and the window plus this: a region is swept once its
  // oldest record is that old, so a record is scanned about (window + slack) / slack = 5
  // times in its life (a sweep of everything at every call cost more than the writes did,
  // with many regions).
  constexpr int64_t kSlackMs = kDedupWindowMs / 4;
  // Records scanned per call (4 per second): enough for the records written since the last
  // call, four times over, and a floor for a backlog, without holding the loop for long.
  size_t budget = 1024 + 4 * std::exchange(dedup_written_, 0);
  storage::WriteBatch wb;
  size_t deleted = 0;
  // Round-robin: the regions after the one the last call stopped at go first.
  auto it = peers_.lower_bound(dedup_next_region_);
  for (size_t seen = 0; seen < peers_.size() && budget > 0; ++seen, ++it) {
    if (it == peers_.end()) it = peers_.begin();
    RegionPeer* p = it->second.get();
    const int64_t cutoff = p->dedup_horizon_ms - kDedupWindowMs;
    if (p->dedup_horizon_ms <= kDedupWindowMs || !p->initialized()) continue;
    if (p->dedup_cursor.empty()) {
      // None here, or none old enough to be worth a sweep (0, unknown, always is).
      if (p->dedup_oldest_ms == INT64_MAX) continue;
      if (p->dedup_oldest_ms != 0 && cutoff - kSlackMs < p->dedup_oldest_ms) continue;
      p->dedup_pass_oldest_ms = INT64_MAX;
      p->dedup_new_oldest_ms = INT64_MAX;
    }
    SweepResult r =
        SweepDedupRecords(engine_, p->desc, p->dedup_cursor, p->dedup_horizon_ms, budget, &wb);
    if (!r.status.ok()) {
      Log()->warn("region {}: sweeping old request records: {}", p->id(), r.status.ToString());
      continue;
    }
    budget -= std::min(budget, r.scanned);
    deleted += r.deleted;
    counters_.dedup_scanned += r.scanned;
    counters_.dedup_deleted += r.deleted;
    p->dedup_pass_oldest_ms = std::min(p->dedup_pass_oldest_ms, r.oldest_kept_ms);
    p->dedup_cursor = std::move(r.next_cursor);
    if (p->dedup_cursor.empty()) {
      // The sweep saw every record older than those written since it began.
      p->dedup_oldest_ms = std::min(p->dedup_pass_oldest_ms, p->dedup_new_oldest_ms);
    }
    dedup_next_region_ = p->dedup_cursor.empty() ? p->id() + 1 : p->id();
  }
  if (deleted == 0) return;
  // Not synced: a record that comes back after a crash is removed by a later sweep.
  if (Status st = engine_->Write(wb, storage::WriteOptions{}); !st.ok()) {
    Log()->warn("sweeping old request records: {}", st.ToString());
  }
}

}  // namespace micedb::store
