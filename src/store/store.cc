#include "store/store.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "store/apply.h"
#include "store/errors.h"
#include "store/keys.h"
#include "store/region_peer.h"
#include "store/snapshot_files.h"

namespace micedb::store {

using storage::Cf;

namespace {

// Index and term of a freshly bootstrapped region's log: a few entries are treated as already
// compacted, so a node that joins later always starts from a snapshot that carries the
// membership (it cannot replay the bootstrap, which never went through the log).
constexpr uint64_t kInitIndex = 5;
constexpr uint64_t kInitTerm = 5;

spdlog::logger* Log() { return GetLogger("store"); }

}  // namespace

void StoreFatal(const std::string& what) {
  Log()->critical("{}", what);
  spdlog::shutdown();
  std::fprintf(stderr, "micedb: fatal: %s\n", what.c_str());
  std::abort();
}

Store::Store(StoreOptions options, storage::Engine* engine, StateMachine* sm, Transport* transport)
    : options_(std::move(options)),
      engine_(engine),
      sm_(sm),
      transport_(transport),
      clock_(options_.clock ? options_.clock : BoottimeClock::Get()) {
  if (options_.manual) options_.async_leader_sync = false;
  // The voters that answered a heartbeat round refuse other candidates until election_tick of
  // their ticks have passed since they received it; the loop's ticks are never closer than
  // tick_ms apart by the voter's clock except one catch-up tick after a stall, and the first
  // may come at once, so that is at least (election_tick - 2) * tick_ms by its clock, and by
  // true time at least that over (1 + drift). The lease, counted on the leader's clock that
  // may run (1 - drift) slow, takes that times (1 - drift), less one tick for a freeze too
  // short to notice (CheckClockGap; raft.md §7). The transport refuses peers with other
  // timing settings.
  const double drift = options_.max_clock_drift;
  assert(drift >= 0 && drift < 1);
  gap_ns_ = int64_t{options_.tick_ms} * 1'000'000;
  const double promise_ns = double(options_.election_tick - 2) * double(gap_ns_);
  lease_ns_ =
      std::max<int64_t>(0, static_cast<int64_t>(promise_ns * (1 - drift) / (1 + drift)) - gap_ns_);
}

Store::~Store() { Stop(); }

int64_t Store::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock_->NowMonotonic()).count();
}

Status Store::Bootstrap(const std::vector<std::pair<NodeId, std::string>>& voters,
                        bool meta_region) {
  {
    auto it = engine_->NewIterator(Cf::kRaft, storage::ReadOptions{});
    it->Seek("R");
    if (it->Valid() && !it->key().empty() && it->key()[0] == 'R') return Status::OK();
    it->Seek("T");
    if (it->Valid() && !it->key().empty() && it->key()[0] == 'T') return Status::OK();
    MICEDB_RETURN_IF_ERROR(it->status());
  }
  storage::WriteBatch wb;
  RegionDescriptor desc;
  desc.mutable_epoch()->set_conf_ver(1);
  desc.mutable_epoch()->set_version(1);
  for (const auto& [id, addr] : voters) {
    desc.mutable_conf_state()->add_voters(id.value());
    NodeAddress na;
    na.set_node_id(id.value());
    na.set_peer_addr(addr);
    wb.Put(Cf::kRaft, NodeAddressKey(id.value()), na.SerializeAsString());
  }
  ApplyState as;
  as.set_applied_index(kInitIndex);
  as.set_applied_term(kInitTerm);
  as.set_truncated_index(kInitIndex);
  as.set_truncated_term(kInitTerm);
  raft::HardState hs;
  hs.set_term(kInitTerm);
  hs.set_commit(kInitIndex);
  auto add = [&](const RegionDescriptor& d) {
    wb.Put(Cf::kRaft, RegionKey(d.id()), d.SerializeAsString());
    wb.Put(Cf::kRaft, ApplyStateKey(d.id()), as.SerializeAsString());
    wb.Put(Cf::kRaft, HardStateKey(d.id()), hs.SerializeAsString());
  };
  desc.set_id(1);
  add(desc);
  if (meta_region) {
    RegionDescriptor meta = desc;
    meta.set_id(kMetaRegionId);
    meta.set_start_key(std::string(kMetaRangeStart));
    meta.set_end_key(std::string(kMetaRangeEnd));
    add(meta);
  }
  Log()->info("bootstrapping region 1{} with {} voters",
              meta_region ? " and the coordinator's region" : "", voters.size());
  return engine_->Write(wb, storage::WriteOptions{.sync = true});
}

Result<RegionPeer*> Store::CreatePeer(const RegionDescriptor& desc, bool load, bool vote_guard) {
  auto peer = std::make_unique<RegionPeer>(desc);
  if (load) {
    MICEDB_RETURN_IF_ERROR(peer->storage.Load(engine_));
    auto as = engine_->Get(Cf::kRaft, ApplyStateKey(desc.id()));
    if (as.ok() && !peer->apply.ParseFromString(*as)) {
      return Status::Corruption(fmt::format("region {}: apply state does not parse", desc.id()));
    }
    if (auto se = engine_->Get(Cf::kRaft, SnapshotEpochKey(desc.id())); se.ok()) {
      if (!peer->snapshot_epoch.ParseFromString(*se)) {
        return Status::Corruption(
            fmt::format("region {}: snapshot epoch does not parse", desc.id()));
      }
    }
  }
  RegionPeer* p = peer.get();
  p->storage.set_snapshot_provider([this, p]() -> Result<raft::Snapshot> {
    if (!p->snap || p->snap_index != p->apply.applied_index()) {
      p->snap = std::shared_ptr<storage::Snapshot>(engine_->GetSnapshot());
      p->snap_index = p->apply.applied_index();
    }
    SnapshotDescriptor sd;
    *sd.mutable_region() = p->desc;
    for (const auto& [id, addr] : addresses_) {
      auto* na = sd.add_addresses();
      na->set_node_id(id.value());
      na->set_peer_addr(addr);
    }
    raft::Snapshot s;
    s.set_data(sd.SerializeAsString());
    s.mutable_metadata()->set_index(p->snap_index);
    s.mutable_metadata()->set_term(p->apply.applied_term());
    *s.mutable_metadata()->mutable_conf_state() = p->desc.conf_state();
    return s;
  });
  raft::Config cfg;
  cfg.id = options_.node_id;
  cfg.election_tick = options_.election_tick;
  cfg.heartbeat_tick = options_.heartbeat_tick;
  cfg.storage = &p->storage;
  cfg.applied = LogIndex(p->apply.applied_index());
  cfg.max_size_per_msg = options_.max_size_per_msg;
  cfg.max_inflight_msgs = options_.max_inflight_msgs;
  cfg.pre_vote = true;
  cfg.check_quorum = true;
  // A leader's lease relies on every voter keeping its promise across a restart, whatever
  // this node's own --raft-lease-reads says.
  cfg.startup_vote_guard = vote_guard;
  cfg.async_leader_persist = options_.async_leader_sync;
  cfg.lazy_commit = options_.raft_lazy_commit;
  if (options_.slow_write_bytes_per_sec > 0) {
    cfg.slow_entry_bytes_per_tick = std::max<uint64_t>(
        1, options_.slow_write_bytes_per_sec * static_cast<uint64_t>(options_.tick_ms) / 1000);
  }
  cfg.random_seed = options_.random_seed ^ (desc.id() * 0x9E3779B97F4A7C15ull);
  MICEDB_ASSIGN_OR_RETURN(p->node, raft::RawNode::Create(cfg));
  p->tick_ns[0] = LeaseNowNs();
  peers_[desc.id()] = std::move(peer);
  peer_index_[desc.id()] = p;
  Touch(p);
  return p;
}

Status Store::LoadRegions() {
  storage::ReadOptions ro;
  ro.lower_bound = "N";
  ro.upper_bound = "O";
  auto it = engine_->NewIterator(Cf::kRaft, ro);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    NodeAddress na;
    if (!na.ParseFromString(std::string(it->value()))) {
      return Status::Corruption("node address record does not parse");
    }
    addresses_[NodeId(na.node_id())] = na.peer_addr();
    transport_->SetAddress(NodeId(na.node_id()), na.peer_addr());
  }
  MICEDB_RETURN_IF_ERROR(it->status());

  ro.lower_bound = "R";
  ro.upper_bound = "S";
  it = engine_->NewIterator(Cf::kRaft, ro);
  std::vector<RegionDescriptor> descs;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    RegionDescriptor desc;
    if (!desc.ParseFromString(std::string(it->value()))) {
      return Status::Corruption(fmt::format("region record {} does not parse", it->key()));
    }
    descs.push_back(desc);
  }
  MICEDB_RETURN_IF_ERROR(it->status());
  for (RegionDescriptor desc : descs) {
    // A snapshot install that a crash interrupted is finished (or, when its files were lost
    // before the old data was touched, given up) before the raft node reads the region's state.
    MICEDB_ASSIGN_OR_RETURN(std::optional<InstalledState> installed,
                            FinishPendingInstall(engine_, desc.id()));
    if (installed) {
      Log()->warn("region {}: finished an interrupted snapshot install", desc.id());
      desc = installed->desc;
      for (const auto& na : installed->addresses) {
        addresses_[NodeId(na.node_id())] = na.peer_addr();
        transport_->SetAddress(NodeId(na.node_id()), na.peer_addr());
      }
    }
    MICEDB_ASSIGN_OR_RETURN(RegionPeer * p, CreatePeer(desc, /*load=*/true));
    Log()->info("region {} loaded: applied {}, log ({}, {}], voters {}", desc.id(),
                p->apply.applied_index(), p->storage.truncated_index(),
                p->storage.LastIndex().value(), p->desc.conf_state().voters_size());
  }
  return Status::OK();
}

Status Store::Start() {
  MICEDB_RETURN_IF_ERROR(LoadRegions());
  PublishInfo();
  next_tick_ms_ = NowMs() + options_.tick_ms;
  last_wake_ = ReadClocks(clock_);
  if (options_.manual) return Status::OK();
  if (options_.async_leader_sync) sync_thread_ = std::thread([this] { SyncLoop(); });
  loop_ = std::thread([this] { Loop(); });
  return Status::OK();
}

void Store::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (loop_.joinable()) loop_.join();
  leases_.Clear();
  {
    std::lock_guard<std::mutex> l(sync_mu_);
    sync_stopping_ = true;
  }
  sync_cv_.notify_all();
  if (sync_thread_.joinable()) sync_thread_.join();
  if (held_round_) {
    // Applied in memory, not on disk: the entries are committed and will be applied again
    // from the log, but this node cannot say when.
    for (auto& [done, result] : held_round_->replies) {
      done(
          TimeoutResponse("the node stopped while its disk refused writes; the write is "
                          "committed and may or may not have been applied"));
    }
    held_round_.reset();
  }
  FailAll(ServerBusyResponse("the node is stopping", 100));
}

void Store::SampleKey(uint64_t region, const region::RegionRequest& req) {
  std::vector<std::string> keys;
  RequestEngineKeys(*sm_, req, &keys);
  if (!keys.empty()) flow_.AddSample(region, keys.front());
}

RegionPeer* Store::FindPeer(uint64_t region) {
  auto it = peer_index_.find(region);
  return it == peer_index_.end() ? nullptr : it->second;
}

void Store::ErasePeer(uint64_t region) {
  peer_index_.erase(region);
  peers_.erase(region);
}

void Store::MaybeCreatePeerFor(const raft::Message& m) {
  if (FindPeer(m.region_id())) return;
  // Votes too: a region split off a local one elects a leader on the store that led the
  // parent at once, maybe before the split is applied here. The empty replica's vote is safe
  // (every candidate applied the split, so its log is at least the split's start) and kept
  // when the split creates the region here (ApplySplit). It takes no snapshot while its range
  // overlaps a local region (OnSnapshotReceived).
  if (m.type() != raft::MSG_APP && m.type() != raft::MSG_HEARTBEAT && m.type() != raft::MSG_SNAP &&
      m.type() != raft::MSG_VOTE && m.type() != raft::MSG_PRE_VOTE) {
    return;
  }
  if (auto t = engine_->Get(Cf::kRaft, TombstoneKey(m.region_id())); t.ok()) {
    // Removed from here before. Late messages of that time cannot bring it back; a message
    // from a replica whose configuration is newer than the one this store was removed in
    // (and names this store, or it would not have sent it) means the region was added here
    // again: start afresh, as a new member. Not on a vote: a new member starts as a learner.
    RegionDescriptor gone;
    if (!gone.ParseFromString(*t) || m.conf_ver() <= gone.epoch().conf_ver() ||
        m.type() == raft::MSG_VOTE || m.type() == raft::MSG_PRE_VOTE) {
      return;
    }
    Status st = engine_->Delete(Cf::kRaft, TombstoneKey(m.region_id()),
                                storage::WriteOptions{.sync = true});
    if (!st.ok()) return;
    Log()->info("region {}: added here again (conf_ver {} after {}): its tombstone is cleared",
                m.region_id(), m.conf_ver(), gone.epoch().conf_ver());
  }
  RegionDescriptor desc;
  desc.set_id(m.region_id());
  // Loaded: an empty replica that voted before a restart keeps its vote. The startup vote
  // guard only where the replica may have acknowledged a leader before a restart: a heartbeat
  // of a new term makes it persist its hard state, so without one it never did.
  const bool existed = engine_->Get(Cf::kRaft, HardStateKey(m.region_id())).ok();
  auto p = CreatePeer(desc, /*load=*/true, /*vote_guard=*/existed);
  if (!p.ok()) {
    Log()->error("region {}: cannot create replica: {}", m.region_id(), p.status().ToString());
    return;
  }
  Log()->info("region {}: created an empty replica on a message from node {}", m.region_id(),
              m.from());
}

void Store::MaybeTellGone(RegionPeer* p, const raft::Message& m) {
  if (!p->initialized() || p->soft.role != raft::Role::kLeader) return;
  const uint64_t from = m.from();
  if (from == options_.node_id.value()) return;
  const auto& cs = p->desc.conf_state();
  auto has = [from](const auto& ids) {
    return std::find(ids.begin(), ids.end(), from) != ids.end();
  };
  if (has(cs.voters()) || has(cs.learners())) return;
  if (m.conf_ver() >= p->desc.epoch().conf_ver()) return;
  // Only with no change of the configuration under way: one in the log, not applied yet, may
  // be adding that store back, and it may already take part.
  const raft::NodeStatus st = p->node->GetStatus();
  if (st.pending_conf_index > st.applied) return;
  raft::Message gone;
  gone.set_type(raft::MSG_GONE);
  gone.set_to(from);
  gone.set_from(options_.node_id.value());
  gone.set_term(st.term.value());
  gone.set_region_id(p->id());
  gone.set_conf_ver(p->desc.epoch().conf_ver());
  counters_.gone_sent++;
  transport_->SendBatch({std::move(gone)});
}

void Store::ProbeStale(const RegionPeer* p) {
  // Term 0: every replica's raft drops it unread. A leader whose configuration no longer names
  // this store answers MSG_GONE first (MaybeTellGone), a store that holds the region's
  // tombstone after a merge answers with it (MaybeTellMerged); so a replica that nobody sends
  // anything (a learner removed while cut off, a source that missed its merge) learns it is
  // gone once it is in another region's way.
  std::vector<raft::Message> out;
  const auto& cs = p->desc.conf_state();
  for (const auto* ids : {&cs.voters(), &cs.learners()}) {
    for (uint64_t to : *ids) {
      if (to == options_.node_id.value()) continue;
      raft::Message m;
      m.set_type(raft::MSG_HEARTBEAT_RESP);
      m.set_to(to);
      m.set_from(options_.node_id.value());
      m.set_region_id(p->id());
      m.set_conf_ver(p->desc.epoch().conf_ver());
      out.push_back(std::move(m));
    }
  }
  if (!out.empty()) transport_->SendBatch(std::move(out));
}

void Store::OnGone(const raft::Message& m) {
  if (!m.context().empty()) return OnMergedGone(m);
  RegionPeer* p = FindPeer(m.region_id());
  if (!p || !p->initialized() || p->removed || p->gone_conf_ver != 0) return;
  if (m.conf_ver() <= p->desc.epoch().conf_ver()) return;  // this replica knows better
  gone_pending_ = true;
  Log()->warn(
      "region {}: node {} leads it in a configuration (conf_ver {}) without this store, newer "
      "than this replica's ({}): the replica was removed; deleting it",
      m.region_id(), m.from(), m.conf_ver(), p->desc.epoch().conf_ver());
  p->gone_conf_ver = m.conf_ver();
}

void Store::DestroyGonePeers() {
  if (!gone_pending_) return;
  gone_pending_ = false;
  std::vector<RegionPeer*> gone;
  for (auto& [id, p] : peers_) {
    if (p->gone_conf_ver != 0 && !p->removed) gone.push_back(p.get());
  }
  for (RegionPeer* p : gone) {
    // The tombstone at the leader's conf_ver: messages of the configurations in between (late
    // ones, from when this store was still a member) cannot bring the replica back.
    p->desc.mutable_epoch()->set_conf_ver(p->gone_conf_ver);
    p->removed = true;
    counters_.gone_destroyed++;
    if (!DestroyPeer(p)) {
      gone_pending_ = true;  // retried with the other removals once the disk takes writes
      return;
    }
  }
}

const RegionPeer* Store::OverlappingRegion(const raft::Message& snap_msg) const {
  SnapshotDescriptor sd;
  if (!sd.ParseFromString(snap_msg.snapshot().data())) return nullptr;  // install refuses it
  const RegionDescriptor& d = sd.region();
  for (const auto& [id, p] : peers_) {
    if (id == snap_msg.region_id() || !p->initialized()) continue;
    // Frozen for a merge into the snapshot's region, whose epoch is past the freeze: the
    // target took it over (the install destroys it first: DropMergedSources).
    if (const MergeState* m = MergeOf(p.get());
        m != nullptr && m->target().id() == d.id() &&
        (d.epoch().version() > m->target().epoch().version() ||
         d.epoch().conf_ver() > m->target().epoch().conf_ver())) {
      continue;
    }
    // Compared in engine keys: a data region ending at +infinity ends below the meta region.
    const bool before = EngineRangeEnd(d.end_key()) <= p->desc.start_key();
    const bool after = EngineRangeEnd(p->desc.end_key()) <= d.start_key();
    if (!before && !after) return p.get();
  }
  return nullptr;
}

void Store::Step(std::vector<raft::Message> msgs) {
  Post([this, msgs = std::move(msgs)]() mutable {
    // A store waiting for its disk is like a paused process: what arrives meanwhile is lost,
    // and raft's retries make up for it.
    if (held_round_ || disk_.alarm() == DiskAlarm::kFailed) return;
    const int64_t now = NowMs();
    for (auto& m : msgs) {
      // Word from that store: its sleeping leaders are alive (CheckSleepers).
      if (m.from() != 0) heard_ms_[m.from()] = now;
      if (m.region_id() == 0) continue;  // a store ping (hibernate.cc), nothing more
      if (m.type() == raft::MSG_GONE) {
        OnGone(m);
        continue;
      }
      MaybeCreatePeerFor(m);
      RegionPeer* p = FindPeer(m.region_id());
      if (!p) {
        MaybeTellMerged(m);
        continue;
      }
      if (p->gone_conf_ver != 0) continue;
      MaybeTellGone(p, m);
      Touch(p);
      OnSleepMessage(p, m, /*stepped=*/false);
      Status st = p->node->Step(m);
      if (!st.ok()) Log()->debug("region {}: step: {}", p->id(), st.ToString());
      OnSleepMessage(p, m, /*stepped=*/true);
    }
  });
}

void Store::OnSnapshotReceived(raft::Message msg, StagedSnapshot staged) {
  Post([this, msg = std::move(msg), staged = std::move(staged)]() mutable {
    if (held_round_ || disk_.alarm() == DiskAlarm::kFailed) {
      std::error_code ec;
      std::filesystem::remove_all(staged.dir, ec);  // the sender tries again later
      return;
    }
    // A store never holds two regions whose ranges overlap: a region split off a local one
    // whose split is not applied here yet waits for it (the leader sends again).
    if (const RegionPeer* other = OverlappingRegion(msg)) {
      counters_.snapshots_refused++;
      Log()->info("region {}: snapshot refused: its range overlaps region {} here", msg.region_id(),
                  other->id());
      std::error_code ec;
      std::filesystem::remove_all(staged.dir, ec);
      ProbeStale(other);
      return;
    }
    received_snapshots_[{msg.region_id(), msg.snapshot().metadata().index()}] = std::move(staged);
    MaybeCreatePeerFor(msg);
    RegionPeer* p = FindPeer(msg.region_id());
    if (!p) return;
    Wake(p);
    Touch(p);
    Status st = p->node->Step(msg);
    if (!st.ok()) Log()->warn("region {}: snapshot step: {}", p->id(), st.ToString());
  });
}

void Store::ReportSnapshot(RegionId region, NodeId to, bool ok) {
  Post([this, region, to, ok] {
    if (RegionPeer* p = FindPeer(region.value())) {
      Touch(p);
      p->node->ReportSnapshot(to,
                              ok ? raft::SnapshotStatus::kFinish : raft::SnapshotStatus::kFailure);
    }
  });
}

void Store::ReportUnreachable(NodeId to) {
  Post([this, to] {
    for (auto& [id, p] : peers_) {
      Touch(p.get());
      p->node->ReportUnreachable(to);
    }
  });
}

RegionPeer* Store::LeaderPeerFor(const region::RegionRequest& req, ResponseCallback& done) {
  const uint64_t region = req.header().region_id();
  RegionPeer* p = FindPeer(region);
  if (!p) {
    done(RegionNotFoundResponse(region));
  } else if (p->soft.role != raft::Role::kLeader) {
    done(NotLeaderResponse(region, p->soft.leader.value()));
    p = nullptr;
  }
  return p;
}

void Store::Propose(region::RegionRequest req, ResponseCallback done, uint64_t only_term) {
  counters_.proposals++;
  Post([this, req = std::move(req), done = std::move(done), only_term]() mutable {
    RegionPeer* p = LeaderPeerFor(req, done);
    if (!p) return;
    Wake(p);
    // A big write holds this loop (and then the followers') for a while, starting with its
    // encoding below: tell the followers first (raft.md §3, big entries).
    const uint64_t bytes = req.ByteSizeLong();
    Touch(p);
    if (std::vector<raft::Message> hb = p->node->AnnounceBigEntries(bytes); !hb.empty()) {
      for (auto& m : hb) {
        m.set_region_id(p->id());
        m.set_conf_ver(p->desc.epoch().conf_ver());
      }
      // The whole loop stalls, not only this region: the followers of every region led here
      // (the coordinator's too) get the same allowance.
      for (auto& [id, other] : peers_) {
        if (other.get() == p || other->sleep == RegionPeer::Sleep::kAsleep) continue;
        Touch(other.get());
        for (auto& m : other->node->AnnounceBigEntries(bytes)) {
          m.set_region_id(id);
          m.set_conf_ver(other->desc.epoch().conf_ver());
          hb.push_back(std::move(m));
        }
      }
      transport_->SendBatch(std::move(hb));
    }
    if (RefusingWrites()) {
      counters_.writes_refused_no_space++;
      return done(AlarmResponse(p->id()));
    }
    if (req.has_txn() && IsTxnRead(req.txn())) {
      return done(InvalidRequestResponse("a transactional read is served, not proposed"));
    }
    if (auto refused = StampProposal(&req, clock_->NowWallMillis())) {
      counters_.requests_refused++;
      return done(std::move(*refused));
    }
    // Refused here already when it cannot run; apply checks again (store/apply.h).
    if (auto refused = CheckRequest(p->desc, req, *sm_)) {
      counters_.requests_refused++;
      if (refused->error().has_epoch_not_match()) AddSplitChildren(p, &*refused);
      return done(std::move(*refused));
    }
    // A one-phase commit takes its memory locks here, on the leader, and keeps them until
    // its entry has applied (or can no longer apply: see CheckTimeouts).
    std::shared_ptr<void> hold;
    if (req.has_txn()) {
      TxnRefusal refused;
      std::function<void()> release = sm_->BeforeProposeTxn(p->desc, p->node->CurrentTerm().value(),
                                                            req.mutable_txn(), &refused);
      if (!refused.message.empty()) {
        counters_.requests_refused++;
        if (release) release();
        return done(refused.retry_ms != 0 ? ServerBusyResponse(refused.message, refused.retry_ms)
                                          : InvalidRequestResponse(refused.message));
      }
      if (release) {
        hold = std::shared_ptr<void>(nullptr, [release = std::move(release)](void*) { release(); });
        // Admitted for this leadership: never appended in another term.
        if (only_term == 0) only_term = p->node->CurrentTerm().value();
        // A definite answer lets go at once; a timeout leaves the entry's fate open.
        done = [hold, done = std::move(done)](const region::RegionResponse& resp) mutable {
          if (!resp.error().has_timeout()) hold.reset();
          done(resp);
        };
      }
    }
    if (flow_.AddWrite(p->id(), KeysOf(req), bytes)) SampleKey(p->id(), req);
    // Proposed with the rest of this round's writes in StartBatches. A big one gets more
    // time, as the router gives it (RouterOptions::slow_write_bytes_per_sec).
    std::string entry = EncodeEntry(std::move(req));
    int64_t timeout = options_.request_timeout_ms;
    if (options_.slow_write_bytes_per_sec > 0) {
      timeout += static_cast<int64_t>(3 * entry.size() * 1000 / options_.slow_write_bytes_per_sec);
    }
    batching_.push_back(p->id());
    p->proposing.emplace_back(
        std::move(entry),
        RegionPeer::Proposal{0, std::move(done), NowMs() + timeout, only_term, std::move(hold)});
  });
}

void Store::ChangeMembership(RegionId region, raft::ConfChange cc, StatusCallback done) {
  Post([this, region, cc = std::move(cc), done = std::move(done)]() mutable {
    RegionPeer* p = FindPeer(region.value());
    if (!p) return done(Status::NotFound(fmt::format("region {} is not here", region.value())));
    if (held_round_ || disk_.alarm() == DiskAlarm::kFailed) {
      return done(ToStatus(AlarmResponse(region.value()).error()));
    }
    if (p->desc.has_merging()) {
      return done(Status::Unavailable(fmt::format("region {} is frozen for a merge into region {}",
                                                  p->id(), p->desc.merging().target().id())));
    }
    Wake(p);
    auto r = p->node->ProposeConfChangeWithIndex(cc);
    if (!r.ok()) return done(r.status());
    ResponseCallback answer = [done = std::move(done)](const region::RegionResponse& resp) {
      done(resp.has_error() ? ToStatus(resp.error()) : Status::OK());
    };
    p->proposals[r->second.value()] = RegionPeer::Proposal{r->first.value(), std::move(answer),
                                                           NowMs() + options_.request_timeout_ms};
  });
}

void Store::TransferLeader(RegionId region, NodeId target) {
  Post([this, region, target] {
    if (held_round_ || disk_.alarm() == DiskAlarm::kFailed) return;
    if (RegionPeer* p = FindPeer(region.value())) {
      Wake(p);
      p->node->TransferLeader(target);
    }
  });
}

void Store::ReadLinearizable(region::RegionRequest req, ResponseCallback done) {
  Post([this, req = std::move(req), done = std::move(done)]() mutable {
    const uint64_t region = req.header().region_id();
    RegionPeer* p = FindPeer(region);
    if (!p) return done(RegionNotFoundResponse(region));
    // A transactional read only on the leader: its timestamp must be known where one-phase
    // commits are admitted (txn/concurrency.h), and a follower's ReadIndex would not see a
    // commit still on its way.
    if (req.has_txn() && p->soft.role != raft::Role::kLeader) {
      return done(NotLeaderResponse(region, p->soft.leader.value()));
    }
    Wake(p);
    // Confirmed with the rest of this round's reads by one ReadIndex in StartBatches; the
    // epoch and keys are checked when it is served.
    int64_t now = NowMs();
    batching_.push_back(p->id());
    p->reading.push_back(
        RegionPeer::Read{std::move(req), std::move(done), now + options_.request_timeout_ms,
                         now + 2 * int64_t{options_.election_tick} * options_.tick_ms});
  });
}

region::RegionResponse Store::ReadLocal(const region::RegionRequest& req) {
  // Possibly stale, on any replica: never for a transactional read (txn/concurrency.h).
  if (req.has_txn()) return InvalidRequestResponse("transactional reads are served by leaders");
  RegionDescriptor desc;
  {
    std::lock_guard<std::mutex> l(info_mu_);
    bool found = false;
    for (const auto& r : *info_) {
      if (r.descriptor.id() == req.header().region_id()) {
        desc = r.descriptor;
        found = true;
      }
    }
    if (!found) return RegionNotFoundResponse(req.header().region_id());
  }
  // One state for the whole command, as for lease reads.
  std::unique_ptr<storage::Snapshot> snap = engine_->GetSnapshot();
  region::RegionResponse resp = ServeRead(sm_, desc, engine_, snap.get(), req);
  if (resp.has_error()) counters_.requests_refused++;
  CountRead(desc.id(), req, resp);
  return resp;
}

std::optional<RegionId> Store::RegionForKey(std::string_view engine_key) const {
  std::lock_guard<std::mutex> l(info_mu_);
  for (const auto& r : *info_) {
    const auto& d = r.descriptor;
    if (engine_key >= d.start_key() && (d.end_key().empty() || engine_key < d.end_key())) {
      return RegionId(d.id());
    }
  }
  return std::nullopt;
}

NodeId Store::LeaderOf(RegionId region) const {
  std::lock_guard<std::mutex> l(info_mu_);
  for (const auto& r : *info_) {
    if (r.descriptor.id() == region.value()) return r.raft.leader;
  }
  return NodeId();
}

std::vector<RegionInfo> Store::Regions() const {
  std::lock_guard<std::mutex> l(info_mu_);
  return *info_;
}

std::shared_ptr<const std::vector<RegionInfo>> Store::RegionsShared() const {
  std::lock_guard<std::mutex> l(info_mu_);
  return info_;
}

std::optional<RegionInfo> Store::RegionInfoOf(RegionId region) const {
  std::lock_guard<std::mutex> l(info_mu_);
  for (const auto& r : *info_) {
    if (r.descriptor.id() == region.value()) return r;
  }
  return std::nullopt;
}

std::map<NodeId, std::string> Store::Addresses() const {
  std::lock_guard<std::mutex> l(info_mu_);
  return info_addresses_;
}

void Store::PublishInfo() {
  std::shared_ptr<const std::vector<RegionInfo>> before;
  {
    std::lock_guard<std::mutex> l(info_mu_);
    before = info_;
  }
  auto info = std::make_shared<std::vector<RegionInfo>>();
  info->reserve(peers_.size());
  size_t at = 0;  // `before` is in region order too
  for (auto& [id, p] : peers_) {
    // A replica asleep since it was last published, whose log and apply have not moved
    // (a flagged heartbeat may still bring it a commit index), has not changed.
    while (at < before->size() && (*before)[at].descriptor.id() < id) ++at;
    if (p->sleep == RegionPeer::Sleep::kAsleep && at < before->size()) {
      const RegionInfo& old = (*before)[at];
      if (old.descriptor.id() == id && old.asleep &&
          old.applied_index == p->apply.applied_index() &&
          old.raft.commit == p->node->Committed() && old.raft.term == p->node->CurrentTerm()) {
        info->push_back(old);
        continue;
      }
    }
    RegionInfo ri;
    ri.descriptor = p->desc;
    ri.raft = p->node->GetStatus();
    ri.applied_index = p->apply.applied_index();
    ri.truncated_index = p->storage.truncated_index();
    ri.log_entries = p->storage.entry_count();
    ri.log_bytes = p->storage.log_bytes();
    ri.asleep = p->sleep == RegionPeer::Sleep::kAsleep;
    ri.snapshot_epoch = p->snapshot_epoch;
    info->push_back(std::move(ri));
  }
  std::lock_guard<std::mutex> l(info_mu_);
  info_ = std::move(info);
  info_addresses_ = addresses_;
}

}  // namespace micedb::store
