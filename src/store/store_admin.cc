// Region administration: admin requests (membership, leader transfer), membership changes,
// snapshot install, log truncation, destroying a removed replica, and failing the requests of
// a peer that cannot answer them.
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "store/apply.h"
#include "store/errors.h"
#include "store/keys.h"
#include "store/region_peer.h"
#include "store/snapshot_files.h"
#include "store/store.h"

namespace micedb::store {

using storage::Cf;

namespace {
spdlog::logger* Log() { return GetLogger("store"); }
}  // namespace

void Store::RunAdmin(region::RegionRequest req, ResponseCallback done) {
  Post([this, req = std::move(req), done = std::move(done)]() mutable {
    const uint64_t region = req.header().region_id();
    RegionPeer* p = LeaderPeerFor(req, done);
    if (!p) return;
    Wake(p);
    // A membership change is allowed under the NOSPACE alarm (removing a full node is how an
    // operator may fix it), not while the loop waits for the disk.
    if (held_round_ || disk_.alarm() == DiskAlarm::kFailed) return done(AlarmResponse(region));
    if (req.body_case() != region::RegionRequest::kAdmin) {
      return done(InvalidRequestResponse("not an admin request"));
    }
    if (auto refused = CheckRequest(p->desc, req, *sm_)) return done(std::move(*refused));
    const region::AdminRequest& admin = req.admin();
    if (admin.has_transfer_leader()) {
      p->node->TransferLeader(NodeId(admin.transfer_leader().node_id()));
      return done(region::RegionResponse());
    }
    if (admin.has_split()) return ProposeSplit(p, std::move(req), std::move(done));
    if (admin.has_prepare_merge() || admin.has_commit_merge() || admin.has_rollback_merge() ||
        admin.has_refuse_merge()) {
      return ProposeMerge(p, std::move(req), std::move(done));
    }
    if (!admin.has_change_peer()) return done(InvalidRequestResponse("empty admin request"));
    const region::ChangePeer& change = admin.change_peer();
    const NodeId target(change.node_id());
    if (!target.valid()) return done(InvalidRequestResponse("node id 0 is not a node"));
    raft::ConfChange cc;
    cc.set_node_id(change.node_id());
    switch (change.op()) {
      case region::ChangePeer::ADD_LEARNER: {
        if (change.peer_addr().empty()) {
          return done(InvalidRequestResponse("adding a node needs its peer address"));
        }
        cc.set_type(raft::ADD_LEARNER);
        ConfChangeContext c;
        c.set_peer_addr(change.peer_addr());
        cc.set_context(c.SerializeAsString());
        break;
      }
      case region::ChangePeer::PROMOTE:
        cc.set_type(raft::ADD_VOTER);
        break;
      case region::ChangePeer::REMOVE:
        cc.set_type(raft::REMOVE_NODE);
        if (target == options_.node_id) {
          // A leader that removes itself can leave the others unable to elect anyone (they
          // may not know yet that the removal committed, and still need its vote). Hand
          // leadership to the most caught-up other voter first; the caller retries there.
          const raft::NodeStatus st = p->node->GetStatus();
          NodeId best;
          uint64_t best_match = 0;
          for (uint64_t v : st.conf_state.voters()) {
            auto it = st.progress.find(NodeId(v));
            if (NodeId(v) == target || it == st.progress.end()) continue;
            if (!best.valid() || it->second.match.value() > best_match) {
              best = NodeId(v);
              best_match = it->second.match.value();
            }
          }
          if (!best.valid()) return done(InvalidRequestResponse("cannot remove the only voter"));
          p->node->TransferLeader(best);
          return done(ServerBusyResponse(
              fmt::format("node {} leads region {}; handing leadership to node {} first, retry",
                          target.value(), region, best.value()),
              uint64_t{10} * options_.tick_ms));
        }
        break;
      default:
        return done(InvalidRequestResponse("unknown membership change"));
    }
    auto r = p->node->ProposeConfChangeWithIndex(cc);
    if (!r.ok()) {
      return done(r.status().code() == StatusCode::kInvalidArgument
                      ? InvalidRequestResponse(r.status().message())
                      : ServerBusyResponse(r.status().message(), uint64_t{10} * options_.tick_ms));
    }
    p->proposals[r->second.value()] = RegionPeer::Proposal{r->first.value(), std::move(done),
                                                           NowMs() + options_.request_timeout_ms};
  });
}

namespace {

// Why `split` cannot split `desc`; empty when it can. The same on every replica.
std::string SplitProblem(const RegionDescriptor& desc, const region::Split& split) {
  const std::string& key = split.split_key();
  if (key <= desc.start_key() || (!desc.end_key().empty() && key >= desc.end_key())) {
    return fmt::format("split key {} is not strictly inside region {}", PrintableKey(key),
                       desc.id());
  }
  const uint64_t id = split.new_region_id();
  if (id == 0 || id == desc.id() || IsMetaRegion(id)) {
    return fmt::format("{} cannot be the id of a new region", id);
  }
  return {};
}

}  // namespace

void Store::ProposeSplit(RegionPeer* p, region::RegionRequest req, ResponseCallback done) {
  if (RefusingWrites()) return done(AlarmResponse(p->id()));
  const region::Split& split = req.admin().split();
  if (std::string why = SplitProblem(p->desc, split); !why.empty()) {
    return done(InvalidRequestResponse(why));
  }
  const uint64_t id = split.new_region_id();
  if (FindPeer(id) != nullptr || engine_->Get(Cf::kRaft, TombstoneKey(id)).ok()) {
    return done(InvalidRequestResponse(fmt::format("region {} exists already", id)));
  }
  batching_.push_back(p->id());
  p->proposing.emplace_back(
      EncodeEntry(std::move(req)),
      RegionPeer::Proposal{0, std::move(done), NowMs() + options_.request_timeout_ms});
}

region::RegionResponse Store::ApplySplit(RegionPeer* p, const region::Split& split,
                                         const raft::Entry& e, storage::WriteBatch* wb) {
  if (std::string why = SplitProblem(p->desc, split); !why.empty()) {
    return InvalidRequestResponse(why);
  }
  const uint64_t id = split.new_region_id();
  RegionDescriptor right = p->desc;
  right.set_id(id);
  right.set_start_key(split.split_key());
  right.mutable_epoch()->set_version(p->desc.epoch().version() + 1);
  p->desc.set_end_key(split.split_key());
  p->desc.mutable_epoch()->set_version(p->desc.epoch().version() + 1);
  wb->Put(Cf::kRaft, RegionKey(p->id()), p->desc.SerializeAsString());
  if (p->split_children.size() >= 4) p->split_children.erase(p->split_children.begin());
  p->split_children.push_back(id);
  Log()->info("region {}: split at index {}: [{}, {}) stays, region {} takes [{}, {})", p->id(),
              e.index(), PrintableKey(p->desc.start_key()), PrintableKey(p->desc.end_key()), id,
              PrintableKey(right.start_key()), PrintableKey(right.end_key()));

  region::RegionResponse resp;
  *resp.mutable_admin()->add_regions() = p->desc;
  *resp.mutable_admin()->add_regions() = right;

  // What follows is this store's alone: whether the new region's replica is created here.
  bool member = false;
  for (uint64_t v : right.conf_state().voters()) member |= NodeId(v) == options_.node_id;
  for (uint64_t l : right.conf_state().learners()) member |= NodeId(l) == options_.node_id;
  if (!member || p->removed || engine_->Get(Cf::kRaft, TombstoneKey(id)).ok()) {
    // This store left the parent before the split (its replica is on its way out), or was
    // removed from the new region already (this replica lagged): the range's data is nobody's.
    Log()->info("region {}: not created here (this store is not one of its members)", id);
    for (Cf cf : kRegionCfs) {
      const CfBounds b = RegionCfBounds(cf, right.start_key(), right.end_key());
      wb->DeleteRange(cf, b.begin, b.end);
    }
    return resp;
  }
  raft::HardState hs;
  hs.set_term(e.term());
  hs.set_commit(e.index());
  if (const RegionPeer* empty = FindPeer(id)) {
    if (empty->initialized()) {
      // Cannot happen while snapshots that overlap a local region are refused.
      Log()->error("region {}: already initialized here when its split applied; left as it is", id);
      return resp;
    }
    // An empty replica made by a message from the new region's first leader: keep its vote.
    const raft::HardState& voted = empty->storage.hard_state();
    if (voted.term() >= e.term()) {
      hs.set_term(voted.term());
      hs.set_vote(voted.vote());
    }
  }
  // The new region's log starts where the split is: its indexes (the keys' mod revisions)
  // go on from the parent's.
  ApplyState as;
  as.set_applied_index(e.index());
  as.set_applied_term(e.term());
  as.set_truncated_index(e.index());
  as.set_truncated_term(e.term());
  wb->Put(Cf::kRaft, RegionKey(id), right.SerializeAsString());
  wb->Put(Cf::kRaft, ApplyStateKey(id), as.SerializeAsString());
  wb->Put(Cf::kRaft, HardStateKey(id), hs.SerializeAsString());
  wb->DeleteRange(Cf::kRaft, RaftLogPrefixBegin(id), RaftLogPrefixEnd(id));
  split_births_.push_back(SplitBirth{right, p->soft.role == raft::Role::kLeader});
  return resp;
}

void Store::CreateSplitPeers() {
  for (SplitBirth& birth : std::exchange(split_births_, {})) {
    const uint64_t id = birth.desc.id();
    bool heard_leader = false;
    if (RegionPeer* empty = FindPeer(id)) {
      // An empty replica that followed a leader may have acknowledged its heartbeats, and the
      // new raft node would not remember that: it keeps the startup vote guard. One that only
      // voted (the usual case: the new region's first election) does not need it.
      heard_leader = empty->soft.leader.valid();
      FailPeer(empty, NotLeaderResponse(id, 0));
      leases_.Erase(id);
      ErasePeer(id);
    }
    // A replica that did not exist before cannot have acknowledged a leader: it may vote at
    // once, so the new region's first election needs no second try.
    auto p = CreatePeer(birth.desc, /*load=*/true, /*vote_guard=*/heard_leader);
    if (!p.ok()) {
      StoreFatal(fmt::format("region {}: cannot load the region a split made: {}", id,
                             p.status().ToString()));
    }
    (*p)->split_born_ms = NowMs();
    if (birth.campaign) {
      Status st = (*p)->node->Campaign();
      if (!st.ok()) Log()->warn("region {}: campaign after the split: {}", id, st.ToString());
    }
  }
}

void Store::AddSplitChildren(const RegionPeer* p, region::RegionResponse* resp) const {
  auto* e = resp->mutable_error()->mutable_epoch_not_match();
  for (uint64_t child : p->split_children) {
    auto it = peers_.find(child);
    if (it != peers_.end() && it->second->initialized()) {
      *e->add_current_regions() = it->second->desc;
      continue;
    }
    for (const SplitBirth& birth : split_births_) {  // split in this round
      if (birth.desc.id() == child) *e->add_current_regions() = birth.desc;
    }
  }
}

bool Store::ApplyConfChange(RegionPeer* p, const raft::Entry& e, storage::WriteBatch* wb) {
  raft::ConfChange cc;
  if (!cc.ParseFromString(e.data())) {
    Log()->error("region {}: conf change at {} does not parse; ignored", p->id(), e.index());
    return false;
  }
  if (p->desc.has_merging()) {
    // Frozen for a merge: the members must stay the target's. Proposals are refused once the
    // freeze is applied, and a new leader proposes none before it has applied its whole log,
    // so this is one proposed by the freeze's own leader before it applied the freeze: raft is
    // told of an empty change instead (node 0 changes nothing).
    Log()->warn("region {}: conf change at {} comes after the merge freeze; ignored", p->id(),
                e.index());
    p->node->ApplyConfChange(raft::ConfChange());
    return false;
  }
  raft::ConfState cs = p->node->ApplyConfChange(cc);
  *p->desc.mutable_conf_state() = cs;
  p->desc.mutable_epoch()->set_conf_ver(p->desc.epoch().conf_ver() + 1);
  p->storage.set_conf_state(cs);
  wb->Put(Cf::kRaft, RegionKey(p->id()), p->desc.SerializeAsString());
  ConfChangeContext ctx;
  if (!cc.context().empty() && ctx.ParseFromString(cc.context()) && !ctx.peer_addr().empty()) {
    NodeId id(cc.node_id());
    addresses_[id] = ctx.peer_addr();
    NodeAddress na;
    na.set_node_id(id.value());
    na.set_peer_addr(ctx.peer_addr());
    wb->Put(Cf::kRaft, NodeAddressKey(id.value()), na.SerializeAsString());
    if (id != options_.node_id) transport_->SetAddress(id, ctx.peer_addr());
  }
  Log()->info("region {}: membership change at {}: {} node {} -> voters {} learners {}", p->id(),
              e.index(), raft::ConfChangeType_Name(cc.type()), cc.node_id(), cs.voters_size(),
              cs.learners_size());
  if (cc.type() == raft::REMOVE_NODE && NodeId(cc.node_id()) == options_.node_id) {
    p->removed = true;
  }
  return true;
}

Status Store::InstallSnapshot(RegionPeer* p, const raft::Snapshot& snap) {
  auto key = std::make_pair(p->id(), snap.metadata().index());
  // A retry of an install whose write failed (no space; the round was held): once its pending
  // record is written, the record finishes it, as a restart would.
  MICEDB_ASSIGN_OR_RETURN(std::optional<InstalledState> redone,
                          FinishPendingInstall(engine_, p->id()));
  InstalledState st;
  if (redone) {
    received_snapshots_.erase(key);
    st = std::move(*redone);
  } else {
    auto it = received_snapshots_.find(key);
    if (it == received_snapshots_.end()) {
      return Status::NotFound(fmt::format("no staged files for snapshot at index {}", key.second));
    }
    if (SnapshotDescriptor sd; sd.ParseFromString(snap.data())) DropMergedSources(p, sd.region());
    Result<InstalledState> done =
        InstallStagedSnapshot(engine_, p->id(), it->second, snap, p->storage.hard_state());
    // The staged files stay for a retry while nothing was recorded (a write refused for
    // space); otherwise the record, or the install, has taken them over.
    if (done.ok() || done.status().code() != StatusCode::kResourceExhausted) {
      received_snapshots_.erase(key);
    }
    MICEDB_RETURN_IF_ERROR(done.status());
    st = std::move(done).value();
  }
  p->desc = st.desc;
  p->apply = st.apply;
  p->storage.set_conf_state(st.desc.conf_state());
  storage::WriteBatch already_written;  // InstallStagedSnapshot has reset the log on disk
  p->storage.ResetToSnapshot(st.apply.truncated_index(), st.apply.truncated_term(),
                             &already_written);
  for (const auto& na : st.addresses) {
    NodeId id(na.node_id());
    addresses_[id] = na.peer_addr();
    if (id != options_.node_id) transport_->SetAddress(id, na.peer_addr());
  }
  // The snapshot brought its request records: a sweep must look at them from the start.
  p->dedup_oldest_ms = 0;
  p->dedup_cursor.clear();
  Log()->info("region {}: installed a snapshot at index {} (term {})", p->id(),
              snap.metadata().index(), snap.metadata().term());
  return Status::OK();
}

void Store::MaybeCompactLog(RegionPeer* p, storage::WriteBatch* wb) {
  uint64_t applied = p->apply.applied_index();
  uint64_t truncated = p->storage.truncated_index();
  if (applied <= truncated || applied - truncated <= options_.log_gc_threshold) return;
  uint64_t target = applied - options_.log_gc_keep;
  if (p->soft.role == raft::Role::kLeader) {
    // Keep what a live follower still needs, unless it is so far behind that a snapshot is
    // the cheaper way to catch it up.
    raft::NodeStatus st = p->node->GetStatus();
    uint64_t min_match = applied;
    for (const auto& [id, pr] : st.progress) {
      if (id != options_.node_id) min_match = std::min(min_match, pr.match.value());
    }
    if (applied - min_match < options_.log_gc_max_lag) target = std::min(target, min_match);
  }
  if (target <= truncated) return;
  p->storage.CompactTo(target, wb);
  p->apply.set_truncated_index(p->storage.truncated_index());
  p->apply.set_truncated_term(p->storage.truncated_term());
  wb->Put(Cf::kRaft, ApplyStateKey(p->id()), p->apply.SerializeAsString());
}

bool Store::DestroyPeer(RegionPeer* p) {
  uint64_t id = p->id();
  Log()->warn("region {}: this node was removed; deleting its replica", id);
  storage::WriteBatch wb;
  // A tombstone that names a merge says that merge took the region over (MaybeTellMerged):
  // not this one.
  RegionDescriptor tombstone = p->desc;
  tombstone.clear_merging();
  BuryReplica(id, tombstone.SerializeAsString(), &wb);
  for (Cf cf : kRegionCfs) {
    const CfBounds b = RegionCfBounds(cf, p->desc.start_key(), p->desc.end_key());
    wb.DeleteRange(cf, b.begin, b.end);
  }
  // Before the data goes: a lease read takes its engine snapshot under the table's lock.
  leases_.Erase(id);
  Status st = engine_->Write(wb, storage::WriteOptions{.sync = true});
  if (!st.ok()) {
    // The replica stays (marked removed) and is deleted once the disk takes writes again.
    OnWriteFailed(st, fmt::format("region {} replica removal", id));
    return false;
  }
  FailPeer(p, RegionNotFoundResponse(id));
  ErasePeer(id);
  PublishInfo();
  return true;
}

void Store::FailPeer(RegionPeer* p, const region::RegionResponse& st) {
  for (auto& [command, pr] : p->proposing) pr.done(st);
  p->proposing.clear();
  // These are in the log already: they may yet commit and be applied (by the next leader), so
  // their outcome is unknown, whatever stopped this replica from answering.
  if (!p->proposals.empty()) {
    const region::RegionResponse unknown = TimeoutResponse(
        fmt::format("{}; the write may or may not have been applied", st.error().message()));
    for (auto& [idx, pr] : p->proposals) pr.done(unknown);
  }
  p->proposals.clear();
  for (auto& r : p->reading) r.done(st);
  p->reading.clear();
  FailWaitingReads(p, st);
  for (auto& [idx, r] : p->reads_waiting_apply) r.done(st);
  p->reads_waiting_apply.clear();
}

void Store::FailWaitingReads(RegionPeer* p, const region::RegionResponse& st) {
  for (auto& [ctx, reads] : p->reads_waiting_index) {
    for (auto& r : reads) r.done(st);
  }
  p->reads_waiting_index.clear();
}

void Store::FailAll(const region::RegionResponse& st) {
  for (auto& [id, p] : peers_) FailPeer(p.get(), st);
}

}  // namespace micedb::store
