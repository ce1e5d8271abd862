// Region administration: membership changes, snapshot install, log truncation, destroying a
// removed replica, and failing the requests of a peer that cannot answer them.
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/logging.h"
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

void Store::ApplyConfChange(RegionPeer* p, const raft::Entry& e, storage::WriteBatch* wb) {
  raft::ConfChange cc;
  if (!cc.ParseFromString(e.data())) {
    Log()->error("region {}: conf change at {} does not parse; ignored", p->id(), e.index());
    return;
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
}

Status Store::InstallSnapshot(RegionPeer* p, const raft::Snapshot& snap) {
  auto key = std::make_pair(p->id(), snap.metadata().index());
  auto it = received_snapshots_.find(key);
  if (it == received_snapshots_.end()) {
    return Status::NotFound(fmt::format("no staged files for snapshot at index {}", key.second));
  }
  std::string pending = EncodePendingInstall(it->second, snap);
  received_snapshots_.erase(it);
  storage::WriteBatch mark;
  mark.Put(Cf::kRaft, PendingSnapshotKey(p->id()), pending);
  MICEDB_RETURN_IF_ERROR(engine_->Write(mark, storage::WriteOptions{.sync = true}));
  MICEDB_ASSIGN_OR_RETURN(InstalledState st,
                          RunSnapshotInstall(engine_, p->id(), pending, p->storage.hard_state()));
  p->desc = st.desc;
  p->apply = st.apply;
  p->storage.set_conf_state(st.desc.conf_state());
  storage::WriteBatch already_written;  // RunSnapshotInstall has reset the log on disk
  p->storage.ResetToSnapshot(st.apply.truncated_index(), st.apply.truncated_term(),
                             &already_written);
  for (const auto& na : st.addresses) {
    NodeId id(na.node_id());
    addresses_[id] = na.peer_addr();
    if (id != options_.node_id) transport_->SetAddress(id, na.peer_addr());
  }
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

void Store::DestroyPeer(RegionPeer* p) {
  uint64_t id = p->id();
  Log()->warn("region {}: this node was removed; deleting its replica", id);
  storage::WriteBatch wb;
  wb.Put(Cf::kRaft, TombstoneKey(id), p->desc.SerializeAsString());
  wb.Delete(Cf::kRaft, RegionKey(id));
  wb.Delete(Cf::kRaft, ApplyStateKey(id));
  wb.Delete(Cf::kRaft, HardStateKey(id));
  wb.DeleteRange(Cf::kRaft, RaftLogPrefixBegin(id), RaftLogPrefixEnd(id));
  for (Cf cf : {Cf::kDefault, Cf::kLock, Cf::kWrite}) {
    wb.DeleteRange(cf, p->desc.start_key(), EngineRangeEnd(p->desc.end_key()));
  }
  // Before the data goes: a lease read takes its engine snapshot under the table's lock.
  leases_.Erase(id);
  Status st = engine_->Write(wb, storage::WriteOptions{.sync = true});
  if (!st.ok()) StoreFatal("destroying a removed replica failed: " + st.ToString());
  FailPeer(p, RegionNotFoundResponse(id));
  peers_.erase(id);
  PublishInfo();
}

void Store::FailPeer(RegionPeer* p, const region::RegionResponse& st) {
  for (auto& [command, pr] : p->proposing) pr.done(st);
  p->proposing.clear();
  for (auto& [idx, pr] : p->proposals) pr.done(st);
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
