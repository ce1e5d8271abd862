// Region merge (docs/sharding.md §2): a source region freezes with a PrepareMerge in its own
// log, then its neighbour the target takes the source's range over with a CommitMerge in the
// target's log, or the source thaws with a RollbackMerge once the target's epoch has moved on
// without it. Source and target have the same members, so every store that applies the
// CommitMerge holds the source's replica, whose log reaches the PrepareMerge: the data is
// there already and nothing moves.
#include <algorithm>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/coding.h"
#include "common/logging.h"
#include "store/apply.h"
#include "store/errors.h"
#include "store/keys.h"
#include "store/merge.h"
#include "store/region_peer.h"
#include "store/snapshot_files.h"
#include "store/store.h"

namespace micedb::store {

using storage::Cf;

namespace {

spdlog::logger* Log() { return GetLogger("store"); }

bool Overlap(const RegionDescriptor& a, const RegionDescriptor& b) {
  const bool before = EngineRangeEnd(a.end_key()) <= b.start_key();
  const bool after = EngineRangeEnd(b.end_key()) <= a.start_key();
  return !before && !after;
}

}  // namespace

void Store::ProposeMerge(RegionPeer* p, region::RegionRequest req, ResponseCallback done) {
  if (RefusingWrites()) return done(AlarmResponse(p->id()));
  const region::AdminRequest& admin = req.admin();
  if (admin.has_prepare_merge()) {
    if (std::string why = MergeProblem(p->desc, admin.prepare_merge().target()); !why.empty()) {
      return done(InvalidRequestResponse(why));
    }
    // Not while another region here is frozen for a merge into this one: its commit would be
    // refused, and if this one merged away it could not even roll back (no store would hold
    // its target any more).
    for (const auto& [id, other] : peers_) {
      if (other->merged_into == 0 && other->desc.has_merging() &&
          other->desc.merging().target().id() == p->id()) {
        return done(ServerBusyResponse(
            fmt::format("region {} is merging into region {}; retry once that is done", id,
                        p->id()),
            1000));
      }
    }
  } else if (admin.has_commit_merge()) {
    const RegionDescriptor& source = admin.commit_merge().source();
    if (!source.has_merging() || source.merging().target().id() != p->id()) {
      return done(InvalidRequestResponse(
          fmt::format("region {} is not frozen for a merge into region {}", source.id(), p->id())));
    }
    // CheckRequest compared the header's epoch with this region's; the merge needs the one the
    // source froze for.
    if (p->desc.epoch().version() != source.merging().target().epoch().version() ||
        p->desc.epoch().conf_ver() != source.merging().target().epoch().conf_ver()) {
      return done(EpochNotMatchResponse(p->desc));
    }
    if (std::string why = MergeProblem(source, p->desc); !why.empty()) {
      return done(InvalidRequestResponse(why));
    }
  } else if (admin.has_rollback_merge()) {
    if (!p->desc.has_merging() || p->desc.merging().index() != admin.rollback_merge().index()) {
      return done(
          InvalidRequestResponse(fmt::format("region {} is not frozen by a PrepareMerge at {}",
                                             p->id(), admin.rollback_merge().index())));
    }
    if (!MergeCannotCommit(p)) {
      return done(InvalidRequestResponse(fmt::format(
          "region {}: the merge into region {} may still commit (its replica here has not "
          "applied a later epoch)",
          p->id(), p->desc.merging().target().id())));
    }
  }
  batching_.push_back(p->id());
  p->proposing.emplace_back(
      EncodeEntry(std::move(req)),
      RegionPeer::Proposal{0, std::move(done), NowMs() + options_.request_timeout_ms});
}

region::RegionResponse Store::ApplyPrepareMerge(RegionPeer* p, const region::PrepareMerge& prepare,
                                                const raft::Entry& e, storage::WriteBatch* wb) {
  if (std::string why = MergeProblem(p->desc, prepare.target()); !why.empty()) {
    return InvalidRequestResponse(why);
  }
  MergeState* m = p->desc.mutable_merging();
  *m->mutable_target() = prepare.target();
  m->mutable_target()->clear_merging();
  m->set_index(e.index());
  m->set_term(e.term());
  p->desc.mutable_epoch()->set_version(p->desc.epoch().version() + 1);
  wb->Put(Cf::kRaft, RegionKey(p->id()), p->desc.SerializeAsString());
  // No lease read runs on it from here (they would be refused anyway).
  leases_.Erase(p->id());
  Log()->info("region {}: frozen at index {} for a merge into region {} (its epoch {}/{})", p->id(),
              e.index(), prepare.target().id(), prepare.target().epoch().version(),
              prepare.target().epoch().conf_ver());
  region::RegionResponse resp;
  *resp.mutable_admin()->add_regions() = p->desc;
  return resp;
}

region::RegionResponse Store::ApplyRollbackMerge(RegionPeer* p,
                                                 const region::RollbackMerge& rollback,
                                                 const raft::Entry& e, storage::WriteBatch* wb) {
  if (!p->desc.has_merging() || p->desc.merging().index() != rollback.index()) {
    return InvalidRequestResponse(
        fmt::format("region {} is not frozen by a PrepareMerge at {}", p->id(), rollback.index()));
  }
  const uint64_t target = p->desc.merging().target().id();
  p->desc.clear_merging();
  p->desc.mutable_epoch()->set_version(p->desc.epoch().version() + 1);
  wb->Put(Cf::kRaft, RegionKey(p->id()), p->desc.SerializeAsString());
  Log()->info("region {}: the merge into region {} rolled back at index {}; it serves again",
              p->id(), target, e.index());
  region::RegionResponse resp;
  *resp.mutable_admin()->add_regions() = p->desc;
  return resp;
}

region::RegionResponse Store::ApplyRefuseMerge(RegionPeer* p, const region::RefuseMerge& refuse,
                                               const raft::Entry& e, storage::WriteBatch* wb) {
  // The header's epoch was the one the source froze for (CheckRequest): from here on no
  // CommitMerge of that freeze passes, on any replica, and the source may roll back.
  p->desc.mutable_epoch()->set_version(p->desc.epoch().version() + 1);
  wb->Put(Cf::kRaft, RegionKey(p->id()), p->desc.SerializeAsString());
  Log()->info(
      "region {}: refused the merge of region {} at index {} (it waited too long); version {}",
      p->id(), refuse.source_region_id(), e.index(), p->desc.epoch().version());
  region::RegionResponse resp;
  *resp.mutable_admin()->add_regions() = p->desc;
  return resp;
}

region::RegionResponse Store::ApplyCommitMerge(RegionPeer* p, const region::CommitMerge& commit,
                                               const raft::Entry& e, storage::WriteBatch* wb) {
  const RegionDescriptor& source = commit.source();
  // Every replica of the target decides alike from its own descriptor and the command: at
  // most one CommitMerge of a PrepareMerge succeeds, since the first bumps the version.
  if (!source.has_merging() || source.merging().target().id() != p->id()) {
    return InvalidRequestResponse(
        fmt::format("region {} is not frozen for a merge into region {}", source.id(), p->id()));
  }
  if (p->desc.epoch().version() != source.merging().target().epoch().version() ||
      p->desc.epoch().conf_ver() != source.merging().target().epoch().conf_ver()) {
    return EpochNotMatchResponse(p->desc);
  }
  if (std::string why = MergeProblem(source, p->desc); !why.empty()) {
    return InvalidRequestResponse(why);
  }
  // The source's replica here: its members are the target's, and the CommitMerge was proposed
  // only once every one of them had the PrepareMerge in its log (Node::CheckMerges).
  RegionPeer* s = FindPeer(source.id());
  if (s == nullptr || !s->initialized() || s->merged_into != 0) {
    StoreFatal(fmt::format(
        "region {}: the merge of region {} applied at index {}, but that region's replica is not "
        "here to hand its data over",
        p->id(), source.id(), e.index()));
  }
  CatchUpSource(s, source.merging().index(), source.merging().term(), wb);
  if (!s->desc.has_merging() || s->desc.merging().index() != source.merging().index() ||
      s->desc.merging().target().id() != p->id()) {
    StoreFatal(fmt::format(
        "region {}: the merge of region {} (frozen at index {}) applied at index {}, but the "
        "replica here is not frozen by that PrepareMerge",
        p->id(), source.id(), source.merging().index(), e.index()));
  }

  if (s->desc.start_key() != source.start_key() || s->desc.end_key() != source.end_key()) {
    StoreFatal(
        fmt::format("region {}: the merge of region {} applied at index {}, but the "
                    "replica here covers another range",
                    p->id(), source.id(), e.index()));
  }
  // The target grows over the source's range; its version passes both.
  if (!p->desc.end_key().empty() && s->desc.start_key() == p->desc.end_key()) {
    p->desc.set_end_key(s->desc.end_key());
  } else {
    p->desc.set_start_key(s->desc.start_key());
  }
  p->desc.mutable_epoch()->set_version(
      std::max(p->desc.epoch().version(), s->desc.epoch().version()) + 1);
  wb->Put(Cf::kRaft, RegionKey(p->id()), p->desc.SerializeAsString());
  // The source's data and request records are the target's now. Its raft state goes, and a
  // tombstone stays so that its late messages cannot bring it back.
  const uint64_t sid = s->id();
  BuryReplica(sid, s->desc.SerializeAsString(), wb);
  s->merged_into = p->id();
  merged_.push_back(sid);
  leases_.Erase(sid);
  // The source's request records: the sweep looks at the whole range again.
  p->dedup_oldest_ms = 0;
  p->dedup_cursor.clear();
  p->dedup_horizon_ms = std::max(p->dedup_horizon_ms, s->dedup_horizon_ms);
  Log()->info("region {}: took region {} over at index {} (merge): [{}, {}), version {}", p->id(),
              sid, e.index(), PrintableKey(p->desc.start_key()), PrintableKey(p->desc.end_key()),
              p->desc.epoch().version());
  region::RegionResponse resp;
  *resp.mutable_admin()->add_regions() = p->desc;
  return resp;
}

void Store::CatchUpSource(RegionPeer* s, uint64_t index, uint64_t term, storage::WriteBatch* wb) {
  const uint64_t applied = s->apply.applied_index();
  if (applied >= index) return;
  // Committed in the source's group (the PrepareMerge at `index` is), and in the log here (the
  // CommitMerge waited for every member to hold it): apply them now, in order.
  auto ents = s->storage.Entries(LogIndex(applied + 1), LogIndex(index + 1), UINT64_MAX);
  if (!ents.ok() || ents->empty() || ents->back().index() != index || ents->back().term() != term) {
    StoreFatal(fmt::format(
        "region {}: a merge needs its entries ({}, {}] (the last of term {}), which the log here "
        "does not hold{}",
        s->id(), applied, index, term, ents.ok() ? "" : ": " + ents.status().ToString()));
  }
  Log()->info("region {}: applying entries ({}, {}] before its merge", s->id(), applied, index);
  std::optional<Applier> applier;
  bool changed = false;
  for (const raft::Entry& entry : *ents) ApplyEntry(s, entry, wb, applier, &changed);
  EndApplier(s, applier);
}

bool Store::MergeCannotCommit(const RegionPeer* s) const {
  if (!s->desc.has_merging() || s->merged_into != 0) return false;
  auto it = peer_index_.find(s->desc.merging().target().id());
  if (it == peer_index_.end()) return false;
  const RegionPeer* t = it->second;
  const RegionEpoch& frozen = s->desc.merging().target().epoch();
  // The target replica here applied, from its log, an epoch past the freeze: had the target
  // taken `s` over, that was the first change after the freeze, and applying it destroyed
  // `s` here (ApplyCommitMerge). An epoch that came by a snapshot shows nothing of the kind.
  return t->initialized() && EpochNewer(t->desc.epoch(), frozen) &&
         !EpochNewer(t->snapshot_epoch, frozen);
}

const MergeState* Store::MergeOf(const RegionPeer* p) {
  if (p->desc.has_merging()) return &p->desc.merging();
  return p->merged_away ? &*p->merged_away : nullptr;
}

void Store::FlushApplyBatch(storage::WriteBatch* wb) {
  if (Status st = engine_->Write(*wb, storage::WriteOptions{}); !st.ok()) {
    // Rare (a merge's commit and a failing disk at once); nothing of the batch went in.
    StoreFatal(fmt::format("the apply write after a merge failed: {}", st.ToString()));
  }
  wb->Clear();
}

void Store::DropMergedSources(RegionPeer* p, const RegionDescriptor& desc) {
  storage::WriteBatch wb;
  wb.Put(Cf::kRaft, SnapshotEpochKey(p->id()), desc.epoch().SerializeAsString());
  p->snapshot_epoch = desc.epoch();
  for (auto& [id, peer] : peers_) {
    RegionPeer* s = peer.get();
    const MergeState* m = MergeOf(s);
    if (m == nullptr || s->merged_into != 0 || m->target().id() != desc.id() ||
        !EpochNewer(desc.epoch(), m->target().epoch()) || !Overlap(desc, s->desc)) {
      continue;
    }
    // The snapshot holds the range: the target took the source over before it.
    Log()->info("region {}: a snapshot of region {} covers it: it was merged; destroyed here", id,
                desc.id());
    BuryReplica(id, s->desc.SerializeAsString(), &wb);
    for (Cf cf : kRegionCfs) {
      const CfBounds b = RegionCfBounds(cf, s->desc.start_key(), s->desc.end_key());
      wb.DeleteRange(cf, b.begin, b.end);
    }
    leases_.Erase(id);
    s->merged_into = desc.id();
    merged_.push_back(id);
  }
  // Before the install: had the epoch been recorded after it, a crash in between would leave a
  // target that looks as if it had reached its epoch by its log.
  if (Status st = engine_->Write(wb, storage::WriteOptions{.sync = true}); !st.ok()) {
    StoreFatal(fmt::format("region {}: cannot record a snapshot's epoch before installing it: {}",
                           p->id(), st.ToString()));
  }
}

void Store::MaybeTellMerged(const raft::Message& m) {
  if (m.from() == 0 || m.from() == options_.node_id.value() || m.type() == raft::MSG_GONE) return;
  auto t = engine_->Get(Cf::kRaft, TombstoneKey(m.region_id()));
  if (!t.ok()) return;
  RegionDescriptor merged;
  if (!merged.ParseFromString(*t) || !merged.has_merging()) return;
  raft::Message gone;
  gone.set_type(raft::MSG_GONE);
  gone.set_to(m.from());
  gone.set_from(options_.node_id.value());
  gone.set_term(m.term());
  gone.set_region_id(m.region_id());
  gone.set_conf_ver(merged.epoch().conf_ver());
  gone.set_context(std::move(*t));
  counters_.gone_sent++;
  transport_->SendBatch({std::move(gone)});
}

void Store::OnMergedGone(const raft::Message& m) {
  RegionDescriptor merged;
  if (!merged.ParseFromString(m.context()) || !merged.has_merging()) return;
  RegionPeer* p = FindPeer(m.region_id());
  if (p == nullptr || !p->initialized() || p->removed || p->gone_conf_ver != 0 ||
      p->merged_into != 0 || p->desc.epoch().version() > merged.epoch().version()) {
    return;
  }
  // The merge committed (the sender's tombstone is written only by it). This replica may still
  // be needed by its store's replica of the target, to apply the merge from its log
  // (CatchUpSource): unless that one has moved past the frozen epoch (a snapshot), or is gone
  // for good (its tombstone). A target not here yet may still come, made by a split this store
  // has not applied yet, and apply the merge.
  const MergeState& ms = merged.merging();
  const RegionPeer* t = FindPeer(ms.target().id());
  const bool past =
      t != nullptr && t->initialized() && EpochNewer(t->desc.epoch(), ms.target().epoch());
  const bool gone = t == nullptr && engine_->Get(Cf::kRaft, TombstoneKey(ms.target().id())).ok();
  if (!past && !gone) return;
  Log()->warn(
      "region {}: node {} says region {} took it over (a merge); this replica has no "
      "part in it any more; deleting it",
      m.region_id(), m.from(), ms.target().id());
  gone_pending_ = true;
  p->gone_conf_ver = std::max<uint64_t>(1, p->desc.epoch().conf_ver());
}

void Store::FinishMerges() {
  for (uint64_t id : std::exchange(merged_, {})) {
    RegionPeer* s = FindPeer(id);
    if (s == nullptr || s->merged_into == 0) continue;
    const RegionPeer* t = FindPeer(s->merged_into);
    FailPeer(s, t != nullptr && t->initialized() ? EpochNotMatchResponse(t->desc)
                                                 : RegionNotFoundResponse(id));
    leases_.Erase(id);
    ErasePeer(id);
  }
}

void Store::ForgetMergedLogs(storage::WriteBatch* wb) {
  for (uint64_t id : merged_) {
    wb->Delete(Cf::kRaft, HardStateKey(id));
    wb->DeleteRange(Cf::kRaft, RaftLogPrefixBegin(id), RaftLogPrefixEnd(id));
  }
}

}  // namespace micedb::store
