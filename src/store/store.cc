#include "store/store.h"

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <utility>

#include <fmt/format.h>

#include <spdlog/spdlog.h>
#include "common/clock.h"
#include "common/logging.h"
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

// Stops the process: the store cannot continue when its own disk refuses a write, because
// the raft state in memory would run ahead of what is durable.
[[noreturn]] void Fatal(const std::string& what) {
  Log()->critical("{}", what);
  spdlog::shutdown();
  std::fprintf(stderr, "micedb: fatal: %s\n", what.c_str());
  std::abort();
}

std::string ReadCtx(uint64_t id) { return fmt::format("r{}", id); }

}  // namespace

Store::Store(StoreOptions options, storage::Engine* engine, StateMachine* sm, Transport* transport)
    : options_(std::move(options)), engine_(engine), sm_(sm), transport_(transport) {
  // The voters that answered a heartbeat round refuse other candidates until election_tick of
  // their ticks have passed since they received it; the loop's ticks are never closer than
  // tick_ms apart except one catch-up tick after a stall, and the first may come at once, so
  // that is at least (election_tick - 2) * tick_ms of real time. The lease takes 90% of it,
  // leaving 10% for the clocks' rates to differ (raft.md §7).
  lease_ns_ = int64_t{options_.election_tick - 2} * options_.tick_ms * 900'000;
}

Store::~Store() { Stop(); }

int64_t Store::LeaseClockNs() {
  // CLOCK_BOOTTIME rather than CLOCK_MONOTONIC: it keeps counting while the host is suspended,
  // so a leader that wakes up does not think its lease is still young.
  timespec ts;
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

int64_t Store::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SystemClock::Get()->NowMonotonic())
      .count();
}

Status Store::Bootstrap(const std::vector<std::pair<NodeId, std::string>>& voters) {
  {
    auto it = engine_->NewIterator(Cf::kRaft, storage::ReadOptions{});
    it->Seek("R");
    if (it->Valid() && !it->key().empty() && it->key()[0] == 'R') return Status::OK();
    it->Seek("T");
    if (it->Valid() && !it->key().empty() && it->key()[0] == 'T') return Status::OK();
    MICEDB_RETURN_IF_ERROR(it->status());
  }
  RegionDescriptor desc;
  desc.set_id(1);
  desc.mutable_epoch()->set_conf_ver(1);
  desc.mutable_epoch()->set_version(1);
  storage::WriteBatch wb;
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
  wb.Put(Cf::kRaft, RegionKey(1), desc.SerializeAsString());
  wb.Put(Cf::kRaft, ApplyStateKey(1), as.SerializeAsString());
  wb.Put(Cf::kRaft, HardStateKey(1), hs.SerializeAsString());
  Log()->info("bootstrapping region 1 with {} voters", voters.size());
  return engine_->Write(wb, storage::WriteOptions{.sync = true});
}

Result<RegionPeer*> Store::CreatePeer(const RegionDescriptor& desc, bool load) {
  auto peer = std::make_unique<RegionPeer>(desc);
  if (load) {
    MICEDB_RETURN_IF_ERROR(peer->storage.Load(engine_));
    auto as = engine_->Get(Cf::kRaft, ApplyStateKey(desc.id()));
    if (as.ok() && !peer->apply.ParseFromString(*as)) {
      return Status::Corruption(fmt::format("region {}: apply state does not parse", desc.id()));
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
  // Lease reads rely on every voter keeping its promise across a restart.
  cfg.startup_vote_guard = options_.lease_reads;
  cfg.async_leader_persist = options_.async_leader_sync;
  cfg.random_seed = options_.random_seed ^ (desc.id() * 0x9E3779B97F4A7C15ull);
  MICEDB_ASSIGN_OR_RETURN(p->node, raft::RawNode::Create(cfg));
  p->tick_ns[0] = LeaseClockNs();
  peers_[desc.id()] = std::move(peer);
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
    auto pending = engine_->Get(Cf::kRaft, PendingSnapshotKey(desc.id()));
    if (pending.ok()) {
      // A snapshot install was interrupted: redo it from the files it left, before the raft
      // node reads the region's state.
      Log()->warn("region {}: finishing an interrupted snapshot install", desc.id());
      raft::HardState hs;
      auto hs_value = engine_->Get(Cf::kRaft, HardStateKey(desc.id()));
      if (hs_value.ok()) hs.ParseFromString(*hs_value);
      MICEDB_ASSIGN_OR_RETURN(InstalledState st,
                              RunSnapshotInstall(engine_, desc.id(), *pending, hs));
      desc = st.desc;
      for (const auto& na : st.addresses) {
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
  {
    std::lock_guard<std::mutex> l(lease_mu_);
    leases_.clear();
  }
  {
    std::lock_guard<std::mutex> l(sync_mu_);
    sync_stopping_ = true;
  }
  sync_cv_.notify_all();
  if (sync_thread_.joinable()) sync_thread_.join();
  FailAll(Status::Unavailable("node is stopping"));
}

void Store::SyncLoop() {
  pthread_setname_np(pthread_self(), "raft-sync");
  std::vector<PersistMark> marks;
  while (true) {
    {
      std::unique_lock<std::mutex> l(sync_mu_);
      sync_cv_.wait(l, [this] { return sync_stopping_ || !sync_pending_.empty(); });
      // What was written before stopping is still synced: a clean stop loses nothing.
      if (sync_pending_.empty()) return;
      marks.swap(sync_pending_);
    }
    // One sync covers every write that returned before it started, so all of marks.
    Status st = engine_->SyncWAL();
    if (!st.ok()) Fatal("raft log sync failed: " + st.ToString());
    counters_.sync_writes++;
    counters_.async_sync_writes++;
    Post([this, done = std::move(marks)] { ReportPersisted(done); });
    marks.clear();
  }
}

void Store::ReportPersisted(const std::vector<PersistMark>& marks) {
  for (const PersistMark& m : marks) {
    if (RegionPeer* p = FindPeer(m.region)) {
      p->node->ReportPersisted(LogIndex(m.index), Term(m.term));
    }
  }
}

void Store::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void Store::Loop() {
  pthread_setname_np(pthread_self(), "raft-loop");
  int64_t next_tick = NowMs() + options_.tick_ms;
  std::vector<std::function<void()>> tasks;
  while (true) {
    {
      std::unique_lock<std::mutex> l(mu_);
      int64_t wait = next_tick - NowMs();
      if (tasks_.empty() && !stopping_ && wait > 0) {
        cv_.wait_for(l, std::chrono::milliseconds(wait));
      }
      if (stopping_) return;
      tasks.swap(tasks_);
    }
    for (auto& t : tasks) t();
    tasks.clear();
    StartBatches();
    int64_t now = NowMs();
    if (now >= next_tick) {
      const int64_t now_ns = LeaseClockNs();
      for (auto& [id, p] : peers_) TickPeer(p.get(), now_ns);
      next_tick = std::max(next_tick + options_.tick_ms, now + 1);
      CheckTimeouts(now);
      PublishInfo();
    }
    RunRound();
  }
}

void Store::TickPeer(RegionPeer* p, int64_t now_ns) {
  p->node->Tick();
  p->tick_ns[p->node->Ticks() % RegionPeer::kTickTimes] = now_ns;
}

int64_t Store::LeaseUntil(RegionPeer* p) const {
  if (!options_.lease_reads) return 0;
  std::optional<uint64_t> start = p->node->LeaseStart();
  // Only once the leader has applied an entry of its own term does its state hold every
  // write acknowledged by an earlier leader.
  if (start.has_value() && p->node->Ticks() - *start < RegionPeer::kTickTimes &&
      p->apply.applied_term() == p->node->CurrentTerm().value()) {
    return p->tick_ns[*start % RegionPeer::kTickTimes] + lease_ns_;
  }
  return 0;
}

void Store::UpdateLeases(bool round_start) {
  if (!options_.lease_reads) return;
  for (auto& [id, p] : peers_) {
    const int64_t until = LeaseUntil(p.get());
    // The commit index is published where it bounds every commit index sent so far: at the
    // start of a round, before its messages leave (later in the round only ReportPersisted
    // moves it, and what it moves leaves in the next round).
    if (round_start) p->round_commit = p->node->Committed().value();
    const uint64_t commit = p->round_commit;
    const uint64_t applied = p->apply.applied_index();
    if (until == p->lease_until_ns &&
        (until == 0 || (commit == p->lease_commit && applied == p->lease_applied))) {
      continue;
    }
    p->lease_until_ns = until;
    p->lease_commit = commit;
    p->lease_applied = applied;
    std::lock_guard<std::mutex> l(lease_mu_);
    if (until == 0) {
      leases_.erase(id);
    } else {
      Lease& lease = leases_[id];
      lease.until_ns = until;
      lease.commit = commit;
      lease.applied = applied;
      // Membership changes and splits bump the epoch.
      if (!lease.desc || lease.desc->epoch().conf_ver() != p->desc.epoch().conf_ver() ||
          lease.desc->epoch().version() != p->desc.epoch().version()) {
        lease.desc = std::make_shared<const RegionDescriptor>(p->desc);
      }
    }
  }
}

std::optional<Result<std::string>> Store::ReadUnderLease(RegionId region,
                                                         std::string_view command) {
  std::shared_ptr<const RegionDescriptor> desc;
  std::unique_ptr<storage::Snapshot> snap;
  {
    std::lock_guard<std::mutex> l(lease_mu_);
    auto it = leases_.find(region.value());
    if (it == leases_.end() || LeaseClockNs() >= it->second.until_ns) return std::nullopt;
    // What the leader committed may be applied and read on a follower (ReadIndex) before it is
    // applied here: until it is, reading here could go back in time.
    if (it->second.applied < it->second.commit) return std::nullopt;
    desc = it->second.desc;
    // Taken under the lock: the loop erases the lease before it destroys a replica's data, so
    // the read cannot see a region that is being deleted; and a command reading several keys
    // sees one state rather than half of an apply running meanwhile.
    snap = engine_->GetSnapshot();
  }
  // Read after the check: nothing another leader acknowledges can precede the check, nothing
  // any node has read is newer than the published commit index, and the state only moves
  // forward, so the result is that of a moment inside the read.
  counters_.reads++;
  counters_.lease_reads++;
  return sm_->Read(*desc, engine_, snap.get(), command);
}

void Store::RunRound() {
  // Before any of this round's messages leave: a transfer's MSG_TIMEOUT_NOW lets the target
  // win at once, so the lease must be gone first.
  UpdateLeases(/*round_start=*/true);
  std::vector<Work> work;
  for (auto& [id, p] : peers_) {
    if (p->node->HasReady()) work.push_back(Work{p.get(), p->node->GetReady()});
  }
  if (work.empty()) return;
  counters_.loop_rounds++;
  bool info_changed = false;
  // Entries committed earlier than this round's appends are durable here already: apply them
  // (and answer their clients, and serve the reads waiting for them) before this round's
  // fsync rather than after it. Under load a leader's round holds both the entries that the
  // followers' answers just committed and the next proposals; otherwise every answer would
  // wait for an fsync that is not its own.
  bool apply_first = true;
  for (const auto& w : work) apply_first &= CanApplyBeforePersist(w.rd);

  // 1. Snapshots first, then every new entry and hard state in one batch.
  storage::WriteBatch wb;
  bool sync = false;
  for (auto& w : work) {
    RegionPeer* p = w.peer;
    if (w.rd.soft_state) {
      if (w.rd.soft_state->leader != p->soft.leader) {
        counters_.leader_changes++;
        // A read index request sent to the old leader will not be answered by the new one.
        FailWaitingReads(p, Status::Unavailable("the leader changed; retry the read"));
      }
      if (w.rd.soft_state->role == raft::Role::kCandidate ||
          w.rd.soft_state->role == raft::Role::kPreCandidate) {
        counters_.elections_started++;
      }
      if (w.rd.soft_state->role != p->soft.role || w.rd.soft_state->leader != p->soft.leader) {
        Log()->info("region {}: {} (leader {})", p->id(), raft::RoleName(w.rd.soft_state->role),
                    w.rd.soft_state->leader.value());
      }
      p->soft = *w.rd.soft_state;
      info_changed = true;
    }
    if (w.rd.snapshot) {
      Status st = InstallSnapshot(p, *w.rd.snapshot);
      if (!st.ok())
        Fatal(fmt::format("region {}: snapshot install failed: {}", p->id(), st.ToString()));
      counters_.snapshots_applied++;
      info_changed = true;
    }
    p->storage.Append(w.rd.entries, &wb);
    if (w.rd.hard_state) p->storage.SetHardState(*w.rd.hard_state, &wb);
    sync |= w.rd.must_sync;
  }
  // A leader's appends leave before its own write (thesis §10.2.1), so that the followers
  // write the entries while it does: a commit then costs one fsync plus a round trip, not two
  // fsyncs plus a round trip. Nothing the leader promises depends on this write (see
  // raft::Ready::send_before_persist); its answers to clients still wait for it (step 3).
  std::vector<raft::Message> out;
  for (auto& w : work) {
    if (w.rd.send_before_persist) TakeMessages(w.peer, &w.rd, &out);
  }
  if (!out.empty()) transport_->SendBatch(std::exchange(out, {}));
  if (apply_first) {
    ApplyAndServe(work, &info_changed);
    UpdateLeases(/*round_start=*/false);  // lease reads may go on at once
  }
  // Where every Ready that needs a sync is a leader's (its messages are gone already and
  // promise nothing about this write), the raft-sync thread syncs while the loop goes on, and
  // the leaders count their own copies once it is done (raft::Config::async_leader_persist).
  // Otherwise (a vote, a follower's entries) the loop syncs here, and that covers the leaders'
  // entries too.
  std::vector<PersistMark> marks;
  bool async = options_.async_leader_sync && sync;
  for (const auto& w : work) {
    if (w.rd.must_sync && !w.rd.send_before_persist) async = false;
    if (options_.async_leader_sync && !w.rd.entries.empty()) {
      const raft::Entry& last = w.rd.entries.back();
      marks.push_back(PersistMark{w.peer->id(), last.index(), last.term()});
    }
  }
  const bool sync_here = sync && !async;
  if (!wb.empty()) {
    Status st = engine_->Write(wb, storage::WriteOptions{.sync = sync_here});
    if (!st.ok()) Fatal("raft log write failed: " + st.ToString());
    if (sync_here) counters_.sync_writes++;
  }
  if (async && !marks.empty()) {
    {
      std::lock_guard<std::mutex> l(sync_mu_);
      sync_pending_.insert(sync_pending_.end(), marks.begin(), marks.end());
    }
    sync_cv_.notify_one();
    marks.clear();
  }

  // 2. The other messages leave only now that what they promise is durable.
  for (auto& w : work) TakeMessages(w.peer, &w.rd, &out);
  if (!out.empty()) transport_->SendBatch(std::move(out));

  // 3-4. Apply and serve reads, when that could not be done before the write.
  if (!apply_first) ApplyAndServe(work, &info_changed);

  // 5. Advance, then truncate logs that grew past the threshold.
  storage::WriteBatch gc;
  for (auto& w : work) {
    w.peer->node->Advance(w.rd);
    MaybeCompactLog(w.peer, &gc);
  }
  // Synced in this round: the leaders among them may count their copies now.
  ReportPersisted(marks);
  if (!gc.empty()) {
    Status st = engine_->Write(gc, storage::WriteOptions{.sync = false});
    if (!st.ok()) Fatal("log truncation write failed: " + st.ToString());
  }
  for (auto& w : work) {
    if (w.peer->removed) DestroyPeer(w.peer);
  }
  if (info_changed) PublishInfo();
  UpdateLeases(/*round_start=*/false);
}

bool Store::CanApplyBeforePersist(const raft::Ready& rd) {
  if (rd.snapshot.has_value()) return false;
  for (const auto& e : rd.committed_entries) {
    // A membership change is applied in the usual order, after the round's writes.
    if (e.type() == raft::ENTRY_CONF_CHANGE) return false;
  }
  // A lone voter commits its own appends in the same Ready (raft.md §2): those must be
  // durable before they are applied and answered.
  return rd.committed_entries.empty() || rd.entries.empty() ||
         rd.committed_entries.back().index() < rd.entries.front().index();
}

void Store::ApplyAndServe(std::vector<Work>& work, bool* info_changed_out) {
  bool info_changed = false;
  // 3. Apply committed entries: data and applied index together.
  storage::WriteBatch awb;
  std::vector<std::pair<ResultCallback, Result<std::string>>> replies;
  for (auto& w : work) {
    RegionPeer* p = w.peer;
    if (w.rd.committed_entries.empty()) continue;
    std::unique_ptr<ApplyRound> round;
    for (const auto& e : w.rd.committed_entries) {
      counters_.entries_committed++;
      if (e.index() <= p->apply.applied_index()) continue;
      std::string result;
      if (e.type() == raft::ENTRY_CONF_CHANGE) {
        ApplyConfChange(p, e, &awb);
        info_changed = true;
      } else if (!e.data().empty()) {
        if (!round) round = sm_->BeginRound(p->desc, engine_, &awb);
        result = round->Apply(e.data(), LogIndex(e.index()));
        counters_.entries_applied++;
      }
      p->apply.set_applied_index(e.index());
      p->apply.set_applied_term(e.term());
      auto it = p->proposals.find(e.index());
      if (it != p->proposals.end()) {
        if (it->second.term == e.term()) {
          replies.emplace_back(std::move(it->second.done), std::move(result));
        } else {
          counters_.proposals_failed++;
          replies.emplace_back(std::move(it->second.done),
                               Status::Aborted("the entry was replaced by another leader's"));
        }
        p->proposals.erase(it);
      }
    }
    round.reset();
    p->apply.set_truncated_index(p->storage.truncated_index());
    p->apply.set_truncated_term(p->storage.truncated_term());
    awb.Put(Cf::kRaft, ApplyStateKey(p->id()), p->apply.SerializeAsString());
  }
  if (!awb.empty()) {
    Status st = engine_->Write(awb, storage::WriteOptions{.sync = false});
    if (!st.ok()) Fatal("apply write failed: " + st.ToString());
  }
  for (auto& [done, result] : replies) done(std::move(result));

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
  for (auto& [id, p] : peers_) {
    for (auto& ctx : p->node->TakeDroppedReads()) {
      auto it = p->reads_waiting_index.find(ctx);
      if (it == p->reads_waiting_index.end()) continue;
      for (auto& r : it->second) {
        r.done(Status::Unavailable("no leader to confirm the read; retry"));
      }
      p->reads_waiting_index.erase(it);
    }
    ServeAppliedReads(p.get());
  }

  if (info_changed) *info_changed_out = true;
}

void Store::ServeAppliedReads(RegionPeer* p) {
  while (!p->reads_waiting_apply.empty() &&
         p->reads_waiting_apply.begin()->first <= p->apply.applied_index()) {
    auto node = p->reads_waiting_apply.extract(p->reads_waiting_apply.begin());
    counters_.reads++;
    node.mapped().done(sm_->Read(p->desc, engine_, nullptr, node.mapped().command));
  }
}

void Store::TakeMessages(RegionPeer* p, raft::Ready* rd, std::vector<raft::Message>* out) {
  for (auto& m : rd->messages) {
    m.set_region_id(p->id());
    if (m.type() != raft::MSG_SNAP) {
      out->push_back(std::move(m));
      continue;
    }
    if (!p->snap || p->snap_index != m.snapshot().metadata().index()) {
      p->node->ReportSnapshot(NodeId(m.to()), raft::SnapshotStatus::kFailure);
      continue;
    }
    counters_.snapshots_sent++;
    transport_->SendSnapshot(
        std::move(m),
        SnapshotSource{[engine = engine_, snap = p->snap, start = p->desc.start_key(),
                        end = EngineRangeEnd(p->desc.end_key())](const std::string& dir) {
          return ExportSnapshotFiles(engine, snap.get(), start, end, dir);
        }});
  }
  rd->messages.clear();
}

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
  {
    // Before the data goes: a lease read takes its engine snapshot under this lock.
    std::lock_guard<std::mutex> l(lease_mu_);
    leases_.erase(id);
  }
  Status st = engine_->Write(wb, storage::WriteOptions{.sync = true});
  if (!st.ok()) Fatal("destroying a removed replica failed: " + st.ToString());
  FailPeer(p, Status::NotLeader("this node no longer holds the region"));
  peers_.erase(id);
  PublishInfo();
}

void Store::FailPeer(RegionPeer* p, const Status& st) {
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

void Store::FailWaitingReads(RegionPeer* p, const Status& st) {
  for (auto& [ctx, reads] : p->reads_waiting_index) {
    for (auto& r : reads) r.done(st);
  }
  p->reads_waiting_index.clear();
}

void Store::FailAll(const Status& st) {
  for (auto& [id, p] : peers_) FailPeer(p.get(), st);
}

void Store::CheckTimeouts(int64_t now) {
  Status timed_out = Status::TimedOut("request timed out; its outcome is unknown");
  for (auto& [id, p] : peers_) {
    for (auto it = p->proposals.begin(); it != p->proposals.end();) {
      if (it->second.deadline_ms > now) {
        ++it;
        continue;
      }
      counters_.proposals_failed++;
      it->second.done(timed_out);
      it = p->proposals.erase(it);
    }
    for (auto it = p->reads_waiting_index.begin(); it != p->reads_waiting_index.end();) {
      // The reads of one request arrived within one round: the first has the earliest
      // deadlines, and when the request is given up all of them are.
      const RegionPeer::Read& first = it->second.front();
      if (first.deadline_ms > now && first.resend_ms > now) {
        ++it;
        continue;
      }
      // MSG_READ_INDEX and its answer travel unacknowledged: after a lost message (the
      // leader's connection reset, say) nothing would ever answer. Fail it as retryable.
      for (auto& r : it->second) {
        r.done(r.deadline_ms <= now
                   ? Status::TimedOut("read timed out waiting for the leader")
                   : Status::Unavailable("no answer from the leader to a read; retry"));
      }
      it = p->reads_waiting_index.erase(it);
    }
    for (auto it = p->reads_waiting_apply.begin(); it != p->reads_waiting_apply.end();) {
      if (it->second.deadline_ms > now) {
        ++it;
        continue;
      }
      it->second.done(Status::TimedOut("read timed out waiting for apply"));
      it = p->reads_waiting_apply.erase(it);
    }
  }
}

RegionPeer* Store::FindPeer(uint64_t region) {
  auto it = peers_.find(region);
  return it == peers_.end() ? nullptr : it->second.get();
}

void Store::MaybeCreatePeerFor(const raft::Message& m) {
  if (FindPeer(m.region_id())) return;
  if (m.type() != raft::MSG_APP && m.type() != raft::MSG_HEARTBEAT && m.type() != raft::MSG_SNAP) {
    return;
  }
  if (engine_->Get(Cf::kRaft, TombstoneKey(m.region_id())).ok()) return;
  RegionDescriptor desc;
  desc.set_id(m.region_id());
  auto p = CreatePeer(desc, /*load=*/false);
  if (!p.ok()) {
    Log()->error("region {}: cannot create replica: {}", m.region_id(), p.status().ToString());
    return;
  }
  Log()->info("region {}: created an empty replica on a message from node {}", m.region_id(),
              m.from());
}

void Store::Step(std::vector<raft::Message> msgs) {
  Post([this, msgs = std::move(msgs)]() mutable {
    for (auto& m : msgs) {
      MaybeCreatePeerFor(m);
      RegionPeer* p = FindPeer(m.region_id());
      if (!p) continue;
      Status st = p->node->Step(m);
      if (!st.ok()) Log()->debug("region {}: step: {}", p->id(), st.ToString());
    }
  });
}

void Store::OnSnapshotReceived(raft::Message msg, std::string dir) {
  Post([this, msg = std::move(msg), dir = std::move(dir)]() mutable {
    received_snapshots_[{msg.region_id(), msg.snapshot().metadata().index()}] = dir;
    MaybeCreatePeerFor(msg);
    RegionPeer* p = FindPeer(msg.region_id());
    if (!p) return;
    Status st = p->node->Step(msg);
    if (!st.ok()) Log()->warn("region {}: snapshot step: {}", p->id(), st.ToString());
  });
}

void Store::ReportSnapshot(RegionId region, NodeId to, bool ok) {
  Post([this, region, to, ok] {
    if (RegionPeer* p = FindPeer(region.value())) {
      p->node->ReportSnapshot(to,
                              ok ? raft::SnapshotStatus::kFinish : raft::SnapshotStatus::kFailure);
    }
  });
}

void Store::ReportUnreachable(NodeId to) {
  Post([this, to] {
    for (auto& [id, p] : peers_) p->node->ReportUnreachable(to);
  });
}

void Store::Propose(RegionId region, std::string command, ResultCallback done) {
  counters_.proposals++;
  Post([this, region, command = std::move(command), done = std::move(done)]() mutable {
    RegionPeer* p = FindPeer(region.value());
    if (!p) return done(Status::NotFound(fmt::format("region {} is not here", region.value())));
    if (p->soft.role != raft::Role::kLeader) {
      return done(Status::NotLeader(
          fmt::format("region {}: leader is node {}", region.value(), p->soft.leader.value())));
    }
    // Proposed with the rest of this round's writes in StartBatches.
    p->proposing.emplace_back(
        std::move(command),
        RegionPeer::Proposal{0, std::move(done), NowMs() + options_.request_timeout_ms});
  });
}

void Store::StartBatches() {
  for (auto& [id, p] : peers_) {
    if (!p->proposing.empty()) {
      std::vector<std::pair<std::string, RegionPeer::Proposal>> batch;
      batch.swap(p->proposing);
      std::vector<std::string> commands;
      commands.reserve(batch.size());
      for (auto& [command, pr] : batch) commands.push_back(std::move(command));
      auto r = p->node->ProposeBatchWithIndex(std::move(commands));
      if (!r.ok()) {
        for (auto& [command, pr] : batch) pr.done(r.status());
      } else {
        // The entries got consecutive indexes ending at r->second, in the batch's order.
        uint64_t index = r->second.value() - batch.size() + 1;
        for (auto& [command, pr] : batch) {
          pr.term = r->first.value();
          p->proposals[index++] = std::move(pr);
        }
      }
    }
    if (!p->reading.empty() && LeaseClockNs() < LeaseUntil(p.get())) {
      // The lease confirms the leadership these reads need: they wait only for the apply of
      // what is committed now (which bounds every commit index sent so far), not for a
      // heartbeat round. These are the reads ReadUnderLease turned away while an apply was
      // pending.
      const uint64_t index = p->node->Committed().value();
      counters_.lease_reads += p->reading.size();
      for (auto& r : p->reading) p->reads_waiting_apply.emplace(index, std::move(r));
      p->reading.clear();
      ServeAppliedReads(p.get());
    }
    if (!p->reading.empty()) {
      std::string ctx = ReadCtx(next_read_id_++);
      auto& reads = p->reads_waiting_index[ctx];
      reads.swap(p->reading);
      p->node->ReadIndex(std::move(ctx));
    }
  }
}

void Store::ChangeMembership(RegionId region, raft::ConfChange cc, ResultCallback done) {
  Post([this, region, cc = std::move(cc), done = std::move(done)]() mutable {
    RegionPeer* p = FindPeer(region.value());
    if (!p) return done(Status::NotFound(fmt::format("region {} is not here", region.value())));
    auto r = p->node->ProposeConfChangeWithIndex(cc);
    if (!r.ok()) return done(r.status());
    p->proposals[r->second.value()] = RegionPeer::Proposal{r->first.value(), std::move(done),
                                                           NowMs() + options_.request_timeout_ms};
  });
}

void Store::TransferLeader(RegionId region, NodeId target) {
  Post([this, region, target] {
    if (RegionPeer* p = FindPeer(region.value())) p->node->TransferLeader(target);
  });
}

void Store::ReadLinearizable(RegionId region, std::string command, ResultCallback done) {
  Post([this, region, command = std::move(command), done = std::move(done)]() mutable {
    RegionPeer* p = FindPeer(region.value());
    if (!p) return done(Status::NotFound(fmt::format("region {} is not here", region.value())));
    // Confirmed with the rest of this round's reads by one ReadIndex in StartBatches.
    int64_t now = NowMs();
    p->reading.push_back(
        RegionPeer::Read{std::move(command), std::move(done), now + options_.request_timeout_ms,
                         now + 2 * int64_t{options_.election_tick} * options_.tick_ms});
  });
}

Result<std::string> Store::ReadLocal(RegionId region, std::string_view command) {
  RegionDescriptor desc;
  {
    std::lock_guard<std::mutex> l(info_mu_);
    bool found = false;
    for (const auto& r : info_) {
      if (r.descriptor.id() == region.value()) {
        desc = r.descriptor;
        found = true;
      }
    }
    if (!found) return Status::NotFound(fmt::format("region {} is not here", region.value()));
  }
  // One state for the whole command, as for lease reads.
  std::unique_ptr<storage::Snapshot> snap = engine_->GetSnapshot();
  return sm_->Read(desc, engine_, snap.get(), command);
}

std::optional<RegionId> Store::RegionForKey(std::string_view engine_key) const {
  std::lock_guard<std::mutex> l(info_mu_);
  for (const auto& r : info_) {
    const auto& d = r.descriptor;
    if (engine_key >= d.start_key() && (d.end_key().empty() || engine_key < d.end_key())) {
      return RegionId(d.id());
    }
  }
  return std::nullopt;
}

NodeId Store::LeaderOf(RegionId region) const {
  std::lock_guard<std::mutex> l(info_mu_);
  for (const auto& r : info_) {
    if (r.descriptor.id() == region.value()) return r.raft.leader;
  }
  return NodeId();
}

std::vector<RegionInfo> Store::Regions() const {
  std::lock_guard<std::mutex> l(info_mu_);
  return info_;
}

std::map<NodeId, std::string> Store::Addresses() const {
  std::lock_guard<std::mutex> l(info_mu_);
  return info_addresses_;
}

void Store::PublishInfo() {
  std::vector<RegionInfo> info;
  for (auto& [id, p] : peers_) {
    RegionInfo ri;
    ri.descriptor = p->desc;
    ri.raft = p->node->GetStatus();
    ri.applied_index = p->apply.applied_index();
    ri.truncated_index = p->storage.truncated_index();
    ri.log_entries = p->storage.entry_count();
    ri.log_bytes = p->storage.log_bytes();
    info.push_back(std::move(ri));
  }
  std::lock_guard<std::mutex> l(info_mu_);
  info_ = std::move(info);
  info_addresses_ = addresses_;
}

}  // namespace micedb::store
