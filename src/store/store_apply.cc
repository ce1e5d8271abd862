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
    if (w.rd.committed_entries.empty()) continue;
    std::optional<Applier> applier;
    auto end_applier = [&] {
      if (!applier) return;
      p->dedup_horizon_ms = std::max(p->dedup_horizon_ms, applier->horizon_ms());
      p->dedup_written += applier->records_written();
      applier.reset();
    };
    for (const auto& e : w.rd.committed_entries) {
      Pulse();  // a long apply still heartbeats (PulseLeaders)
      counters_.entries_committed++;
      if (e.index() <= p->apply.applied_index()) continue;
      region::RegionResponse result;
      if (e.type() == raft::ENTRY_CONF_CHANGE) {
        // A membership change bumps conf_ver, which data requests do not check: the round's
        // applier (holding the descriptor by reference) stays valid.
        ApplyConfChange(p, e, awb);
        info_changed = true;
      } else if (!e.data().empty()) {
        if (!applier) applier.emplace(sm_, p->desc, engine_, awb);
        auto waiting = p->proposals.find(e.index());
        const bool answering = waiting != p->proposals.end() && waiting->second.term == e.term();
        region::AdminRequest admin;
        result = applier->Apply(e.data(), LogIndex(e.index()), answering, &admin);
        if (admin.has_split()) {
          // The round goes on over the smaller range: its earlier writes (in the batch only)
          // and dedup records stay visible to the entries after the split.
          result = ApplySplit(p, admin.split(), e, awb);
          applier->RegionChanged();
          info_changed = true;
        }
        if (result.has_error()) {
          counters_.requests_refused++;
          if (result.error().has_epoch_not_match()) AddSplitChildren(p, &result);
        }
        counters_.entries_applied++;
      }
      p->apply.set_applied_index(e.index());
      p->apply.set_applied_term(e.term());
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
    end_applier();
    p->apply.set_truncated_index(p->storage.truncated_index());
    p->apply.set_truncated_term(p->storage.truncated_term());
    awb->Put(Cf::kRaft, ApplyStateKey(p->id()), p->apply.SerializeAsString());
  }
  if (info_changed) *info_changed_out = true;
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
  for (auto& w : work) w.peer->reads_dropped_check = true;
  for (auto& [id, p] : peers_) {
    // Only a replica with reads waiting, or one that did something this round, can have
    // dropped or servable reads.
    if (p->reads_waiting_index.empty() && p->reads_waiting_apply.empty() &&
        !p->reads_dropped_check) {
      continue;
    }
    p->reads_dropped_check = false;
    for (auto& ctx : p->node->TakeDroppedReads()) {
      auto it = p->reads_waiting_index.find(ctx);
      if (it == p->reads_waiting_index.end()) continue;
      for (auto& r : it->second) r.done(NotLeaderResponse(p->id(), 0));
      p->reads_waiting_index.erase(it);
    }
    ServeAppliedReads(p.get());
  }
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
    CountRead(p->id(), resp);
    node.mapped().done(std::move(resp));
  }
}

void Store::SweepDedup() {
  storage::WriteBatch wb;
  size_t deleted = 0;
  for (auto& [id, p] : peers_) {
    if (p->dedup_horizon_ms == 0 || !p->initialized()) continue;
    if (p->dedup_empty && p->dedup_written == 0) continue;  // idle regions cost nothing
    const bool from_start = p->dedup_cursor.empty();
    // Enough to keep up with the region's writes, twice over, and a floor for the backlog.
    const size_t budget = 4096 + 2 * std::exchange(p->dedup_written, 0);
    SweepResult r =
        SweepDedupRecords(engine_, p->desc, p->dedup_cursor, p->dedup_horizon_ms, budget, &wb);
    if (!r.status.ok()) {
      Log()->warn("region {}: sweeping old request records: {}", id, r.status.ToString());
      continue;
    }
    p->dedup_empty = from_start && r.next_cursor.empty() && r.scanned == r.deleted;
    p->dedup_cursor = std::move(r.next_cursor);
    deleted += r.deleted;
  }
  if (deleted == 0) return;
  // Not synced: a record that comes back after a crash is removed by a later sweep.
  if (Status st = engine_->Write(wb, storage::WriteOptions{}); !st.ok()) {
    Log()->warn("sweeping old request records: {}", st.ToString());
  }
}

}  // namespace micedb::store
