// The raft loop: input, ticks, one round of persist / send / apply / advance, and the
// raft-sync thread that syncs a leader's own log while the loop goes on (store.h, steps 1-5).
#include <algorithm>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "common/pulse.h"
#include "store/errors.h"
#include "store/keys.h"
#include "store/region_peer.h"
#include "store/snapshot_files.h"
#include "store/store.h"

namespace micedb::store {

namespace {
spdlog::logger* Log() { return GetLogger("store"); }
std::string ReadCtx(uint64_t id) { return fmt::format("r{}", id); }
}  // namespace

void Store::Loop() {
  pthread_setname_np(pthread_self(), "raft-loop");
  ScopedPulse pulse([this] { PulseLeaders(); });
  std::vector<std::function<void()>> tasks;
  while (true) {
    {
      std::unique_lock<std::mutex> l(mu_);
      int64_t wait = next_tick_ms_ - NowMs();
      if (tasks_.empty() && !stopping_ && wait > 0) {
        cv_.wait_for(l, std::chrono::milliseconds(wait));
      }
      if (stopping_) return;
      tasks.swap(tasks_);
    }
    busy_since_ms_ = NowMs();
    for (auto& t : tasks) t();
    tasks.clear();
    Drive(NowMs());
  }
}

bool Store::TakeTasks(std::vector<std::function<void()>>* tasks) {
  std::lock_guard<std::mutex> l(mu_);
  if (stopping_) return false;
  tasks->swap(tasks_);
  return true;
}

void Store::Poll() {
  ScopedPulse pulse([this] { PulseLeaders(); });
  std::vector<std::function<void()>> tasks;
  if (!TakeTasks(&tasks)) return;
  busy_since_ms_ = NowMs();
  for (auto& t : tasks) t();
  Drive(NowMs());
}

void Store::Drive(int64_t now) {
  CheckClockGap(ReadClocks(clock_));
  if (now >= next_disk_check_ms_) {
    next_disk_check_ms_ = now + options_.disk_check_ms;
    CheckDisk();
  }
  if (held_round_ || disk_.alarm() == DiskAlarm::kFailed) {
    HoldWork(now);
    return;
  }
  StartBatches();
  if (now >= next_tick_ms_) {
    const int64_t now_ns = LeaseNowNs();
    for (auto& [id, p] : peers_) {
      UpdateSleep(p.get());
      if (p->sleep != RegionPeer::Sleep::kAsleep) TickPeer(p.get(), now_ns);
    }
    next_tick_ms_ = std::max(next_tick_ms_ + options_.tick_ms, now + 1);
    if (options_.hibernate && now >= next_sleep_check_ms_) {
      next_sleep_check_ms_ = now + int64_t{options_.heartbeat_tick} * options_.tick_ms;
      CheckSleepers(now);
    }
    CheckTimeouts(now);
    // Rebuilding every region's info is the biggest per-tick cost with many regions.
    if (now >= next_tick_publish_ms_) {
      next_tick_publish_ms_ = now + kTickPublishMs;
      PublishInfo();
    }
  }
  RunRound();
  if (now >= next_dedup_sweep_ms_ && !held_round_) {
    next_dedup_sweep_ms_ = now + 250;
    SweepDedup();
  }
}

void Store::PulseLeaders() {
  const int64_t now = NowMs();
  const int64_t interval = static_cast<int64_t>(options_.tick_ms) * options_.heartbeat_tick;
  if (now - std::max(busy_since_ms_, last_pulse_ms_) < interval) return;
  last_pulse_ms_ = now;
  std::vector<raft::Message> out;
  for (auto& [id, p] : peers_) {
    if (p->sleep == RegionPeer::Sleep::kAsleep) continue;
    Touch(p.get());
    for (raft::Message& m : p->node->HeartbeatNow()) {
      m.set_region_id(id);
      m.set_conf_ver(p->desc.epoch().conf_ver());
      out.push_back(std::move(m));
    }
  }
  if (out.empty()) return;
  counters_.pulses++;
  transport_->SendBatch(std::move(out));
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
    while (!st.ok()) {
      // The leaders have not counted these entries: they wait (the followers may commit
      // them meanwhile). Only a sync that failed for want of space is retried.
      counters_.write_failures++;
      const DiskAlarm alarm = ClassifyWriteError(st);
      if (disk_.Raise(alarm, "the raft log sync failed: " + st.ToString())) {
        Log()->error("{} alarm: the raft log sync failed: {}", DiskAlarmName(alarm), st.ToString());
      }
      if (alarm == DiskAlarm::kFailed) return;  // the loop stops replicating (HoldWork)
      sync_failing_ = true;
      {
        std::unique_lock<std::mutex> l(sync_mu_);
        sync_cv_.wait_for(l, std::chrono::milliseconds(options_.disk_check_ms),
                          [this] { return sync_stopping_; });
        if (sync_stopping_) return;  // unsynced: never acknowledged, so nothing is lost
      }
      if (engine_->Resume().ok()) st = engine_->SyncWAL();
    }
    sync_failing_ = false;
    counters_.sync_writes++;
    counters_.async_sync_writes++;
    Post([this, done = std::move(marks)] { ReportPersisted(done); });
    marks.clear();
  }
}

void Store::ReportPersisted(const std::vector<PersistMark>& marks) {
  for (const PersistMark& m : marks) {
    if (RegionPeer* p = FindPeer(m.region)) {
      Touch(p);
      p->node->ReportPersisted(LogIndex(m.index), Term(m.term));
    }
  }
}

void Store::Touch(RegionPeer* p) {
  if (p->touched) return;
  p->touched = true;
  touched_.push_back(p->id());
}

void Store::TouchAll() {
  for (auto& [id, p] : peers_) Touch(p.get());
}

void Store::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void Store::RunRound() {
#ifndef NDEBUG
  CheckUntouched();
#endif
  // Only the replicas something reached since the last round can have a Ready or a new lease.
  std::vector<uint64_t> touched;
  touched.swap(touched_);
  // In region order, as the round's log writes then are: RocksDB's memtable inserts keys in
  // ascending order far more cheaply (it starts each search where the last one ended).
  std::sort(touched.begin(), touched.end());
  {
    // Before any of this round's messages leave: a transfer's MSG_TIMEOUT_NOW lets the target
    // win at once, so the lease must be gone first.
    const ClockReading now = ReadClocks(clock_);
    std::erase_if(touched, [&](uint64_t id) {
      RegionPeer* p = FindPeer(id);
      // Listed twice: a replica made anew under the same id (CreateSplitPeers).
      if (p == nullptr || !p->touched) return true;
      p->touched = false;
      UpdateLease(p, /*round_start=*/true, now);
      return false;
    });
  }
  DestroyGonePeers();
  auto round = std::make_unique<Round>();
  Round& r = *round;
  for (uint64_t id : touched) {
    RegionPeer* p = FindPeer(id);
    if (p != nullptr && p->node->HasReady()) r.work.push_back(Work{p, p->node->GetReady()});
  }
  if (r.work.empty()) return;
  counters_.loop_rounds++;
  counters_.readies += r.work.size();
  r.started_ms = NowMs();
  // Entries committed earlier than this round's appends are durable here already: apply them
  // (and answer their clients, and serve the reads waiting for them) before this round's
  // fsync rather than after it. Under load a leader's round holds both the entries that the
  // followers' answers just committed and the next proposals; otherwise every answer would
  // wait for an fsync that is not its own.
  r.apply_first = true;
  // An empty replica's hard state is written by the log write; a split applied in this round
  // may take it over (ApplySplit), so it must be written first.
  for (const auto& w : r.work) {
    r.apply_first &= CanApplyBeforePersist(w.rd) && w.peer->initialized();
  }

  for (auto& w : r.work) {
    RegionPeer* p = w.peer;
    if (w.rd.soft_state) {
      if (w.rd.soft_state->leader != p->soft.leader) {
        counters_.leader_changes++;
        // A read index request sent to the old leader will not be answered by the new one.
        FailWaitingReads(p, NotLeaderResponse(p->id(), w.rd.soft_state->leader.value()));
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
      r.info_changed = true;
    }
  }
  r.step = Round::Step::kInstall;
  if (!ContinueRound(r)) held_round_ = std::move(round);
}

bool Store::InstallSnapshots(Round& r) {
  // 1. Snapshots first (a failed install holds the round like a failed write, and is retried:
  // its staged files, or its pending-install record once that is written, stay).
  for (auto& w : r.work) {
    RegionPeer* p = w.peer;
    if (!w.rd.snapshot || w.installed || p->merged_into != 0) continue;
    Status st = InstallSnapshot(p, *w.rd.snapshot);
    if (!st.ok()) {
      if (ClassifyWriteError(st) == DiskAlarm::kNoSpace) {
        OnWriteFailed(st, fmt::format("region {}'s snapshot install", p->id()));
        return false;
      }
      // The raft node has taken the snapshot already and cannot take it back. What is on
      // disk is consistent either way: the region's old state when the install was given up
      // (Aborted: the leader sends a fresh snapshot after the restart), or a pending record
      // that the restart finishes.
      StoreFatal(fmt::format("region {}: snapshot install failed: {}{}", p->id(), st.ToString(),
                             st.code() == StatusCode::kAborted
                                 ? "; the region keeps its old state and is sent a fresh "
                                   "snapshot after the restart"
                                 : "; the restart finishes the install"));
    }
    w.installed = true;
    counters_.snapshots_applied++;
    r.info_changed = true;
  }
  return true;
}

void Store::BuildLogWrite(Round& r) {
  // 2. Every new entry and hard state in one batch.
  bool sync = false;
  // A leader's appends leave before its own write (thesis §10.2.1), so that the followers
  // write the entries while it does: a commit then costs one fsync plus a round trip, not two
  // fsyncs plus a round trip. Nothing the leader promises depends on this write (see
  // raft::Ready::send_before_persist); its answers to clients still wait for it (step 3).
  // They leave before the write batch is even built, which takes a while for big entries.
  std::vector<raft::Message> out;
  for (auto& w : r.work) {
    if (w.rd.send_before_persist) TakeMessages(w.peer, &w.rd, &out);
  }
  if (!out.empty()) transport_->SendBatch(std::move(out));
  for (auto& w : r.work) {
    for (const auto& e : w.rd.entries) r.entry_bytes += e.data().size();
    w.peer->storage.Append(&w.rd.entries, &r.log_wb);  // takes their data
    if (w.rd.hard_state) w.peer->storage.SetHardState(*w.rd.hard_state, &r.log_wb);
    sync |= w.rd.must_sync;
  }
  // Where every Ready that needs a sync is a leader's (its messages are gone already and
  // promise nothing about this write), the raft-sync thread syncs while the loop goes on, and
  // the leaders count their own copies once it is done (raft::Config::async_leader_persist).
  // Otherwise (a vote, a follower's entries) the loop syncs here, and that covers the leaders'
  // entries too.
  r.async = options_.async_leader_sync && sync;
  for (const auto& w : r.work) {
    if (w.rd.must_sync && !w.rd.send_before_persist) r.async = false;
    if (options_.async_leader_sync && !w.rd.entries.empty()) {
      const raft::Entry& last = w.rd.entries.back();
      r.marks.push_back(PersistMark{w.peer->id(), last.index(), last.term()});
    }
  }
  r.sync_here = sync && !r.async;
}

bool Store::ContinueRound(Round& r) {
  using Step = Round::Step;
  if (r.pending) {
    Status st = engine_->Write(*r.pending, storage::WriteOptions{.sync = r.pending_sync});
    if (!st.ok()) {
      OnWriteFailed(st, r.pending_what);
      return false;
    }
    if (r.pending_sync) counters_.sync_writes++;
    Log()->warn("the held {} write went in; the round goes on", r.pending_what);
    r.pending.reset();
  }
  while (true) {
    switch (r.step) {
      case Step::kInstall:
        if (!InstallSnapshots(r)) return false;
        BuildLogWrite(r);
        r.step = Step::kApplyFirst;
        break;
      case Step::kApplyFirst:
        if (!r.apply_first) {
          r.step = Step::kLogWrite;
          break;
        }
        {
          storage::WriteBatch awb;
          ApplyCommitted(r.work, &awb, &r.replies, &r.info_changed);
          if (!Persist(r, std::move(awb), false, "apply", Step::kServeFirst)) return false;
        }
        break;
      case Step::kServeFirst:
        ServeApplied(r.work, &r.replies);
        UpdateRoundLeases(r);  // lease reads may go on at once
        r.step = Step::kLogWrite;
        break;
      case Step::kLogWrite: {
        // Replicas a merge took over (an apply before this write, or a snapshot): what the
        // round would still write of their logs stays deleted.
        if (!merged_.empty()) ForgetMergedLogs(&r.log_wb);
        const int64_t before = NowMs();
        const bool ok =
            Persist(r, std::exchange(r.log_wb, {}), r.sync_here, "raft log", Step::kSendAndApply);
        r.write_ms = NowMs() - before;
        if (!ok) return false;
        break;
      }
      case Step::kSendAndApply: {
        if (r.async && !r.marks.empty()) {
          {
            std::lock_guard<std::mutex> l(sync_mu_);
            sync_pending_.insert(sync_pending_.end(), r.marks.begin(), r.marks.end());
          }
          sync_cv_.notify_one();
          r.marks.clear();
        }
        // 2. The other messages leave only now that what they promise is durable.
        std::vector<raft::Message> out;
        for (auto& w : r.work) TakeMessages(w.peer, &w.rd, &out);
        if (!out.empty()) transport_->SendBatch(std::move(out));
        // 3. Apply, when that could not be done before the write.
        if (r.apply_first) {
          r.step = Step::kAdvance;
          break;
        }
        storage::WriteBatch awb;
        ApplyCommitted(r.work, &awb, &r.replies, &r.info_changed);
        if (!Persist(r, std::move(awb), false, "apply", Step::kServe)) return false;
        break;
      }
      case Step::kServe:
        // 4. Answer and serve reads.
        ServeApplied(r.work, &r.replies);
        r.step = Step::kAdvance;
        break;
      case Step::kAdvance: {
        // 5. Advance, then truncate logs that grew past the threshold.
        storage::WriteBatch gc;
        for (auto& w : r.work) {
          w.peer->node->Advance(w.rd);
          // What the Ready held back (too many committed entries for one), and what the
          // persist reports below move, are for the next round.
          Touch(w.peer);
          if (w.peer->merged_into == 0) MaybeCompactLog(w.peer, &gc);
        }
        // Synced in this round: the leaders among them may count their copies now.
        ReportPersisted(r.marks);
        if (!Persist(r, std::move(gc), false, "log truncation", Step::kEnd)) return false;
        break;
      }
      case Step::kEnd:
        FinishRound(r);
        return true;
    }
  }
}

void Store::FinishRound(Round& r) {
  // Before a replica removed in this round is destroyed (which ends its lease anyway).
  UpdateRoundLeases(r);
  for (auto& w : r.work) {
    if (w.peer->removed && !DestroyPeer(w.peer)) break;
  }
  if (!merged_.empty()) {
    FinishMerges();
    r.info_changed = true;
  }
  if (!split_births_.empty()) {
    CreateSplitPeers();
    r.info_changed = true;
  }
  if (r.info_changed) PublishInfo();
  const int64_t took = NowMs() - r.started_ms;
  if (took * 2 >= static_cast<int64_t>(options_.tick_ms) * options_.election_tick) {
    counters_.slow_rounds++;
    Log()->warn(
        "a raft loop round took {} ms (log write {} ms{}, {} bytes of new entries): ticks and "
        "heartbeats waited that long; more than an election timeout costs leaderships",
        took, r.write_ms, r.sync_here ? " with fsync" : "", r.entry_bytes);
  }
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

void Store::TakeMessages(RegionPeer* p, raft::Ready* rd, std::vector<raft::Message>* out) {
  for (auto& m : rd->messages) {
    m.set_region_id(p->id());
    m.set_conf_ver(p->desc.epoch().conf_ver());
    // Hibernation (hibernate.cc): an idle leader asks its followers to stop; a stopped
    // follower says so in its answers.
    if ((m.type() == raft::MSG_HEARTBEAT && p->sleep == RegionPeer::Sleep::kAsking) ||
        (m.type() == raft::MSG_HEARTBEAT_RESP && p->sleep == RegionPeer::Sleep::kAsleep)) {
      m.set_hibernate(true);
    }
    if (m.type() != raft::MSG_SNAP) {
      out->push_back(std::move(m));
      continue;
    }
    Touch(p);  // a report below
    if (!p->snap || p->snap_index != m.snapshot().metadata().index()) {
      p->node->ReportSnapshot(NodeId(m.to()), raft::SnapshotStatus::kFailure);
      continue;
    }
    if (p->split_born_ms != 0 && NowMs() - p->split_born_ms < options_.split_snapshot_wait_ms) {
      // A region just split off: its replica on that store is made by the same split there,
      // soon (the store refuses a snapshot until then). Exporting the range meanwhile would
      // be work thrown away, again at every retry. Reported as delivered, so that raft probes
      // from the snapshot's index down (the rejections' hints lead it to the split's index,
      // where the replica made by the split starts); a replica still empty asks again.
      p->node->ReportSnapshot(NodeId(m.to()), raft::SnapshotStatus::kFinish);
      continue;
    }
    counters_.snapshots_sent++;
    // The files are exported on the transport's thread, never on this one.
    transport_->SendSnapshot(
        std::move(m),
        SnapshotSource{[engine = engine_, snap = p->snap, start = p->desc.start_key(),
                        end = EngineRangeEnd(p->desc.end_key())](const std::string& dir) {
          return ExportSnapshotFiles(engine, snap.get(), start, end, dir);
        }});
  }
  rd->messages.clear();
}

namespace {

// Appends `batch` (one leader's proposals of this round) to the log in one raft call. Taken by
// value: its commands and callbacks are moved out.
// NOLINTNEXTLINE(performance-unnecessary-value-param)
void ProposeBatch(RegionPeer* p, std::vector<std::pair<std::string, RegionPeer::Proposal>> batch) {
  std::vector<std::string> commands;
  commands.reserve(batch.size());
  for (auto& [command, pr] : batch) commands.push_back(std::move(command));
  auto r = p->node->ProposeBatchWithIndex(std::move(commands));
  if (!r.ok()) {
    // Not the leader any more (or a transfer is under way): nothing was appended.
    for (auto& [command, pr] : batch) pr.done(NotLeaderResponse(p->id(), 0));
    return;
  }
  // The entries got consecutive indexes ending at r->second, in the batch's order.
  uint64_t index = r->second.value() - batch.size() + 1;
  for (auto& [command, pr] : batch) {
    pr.term = r->first.value();
    p->proposals[index++] = std::move(pr);
  }
}

}  // namespace

void Store::StartBatches() {
  if (batching_.empty()) return;
  std::vector<uint64_t> ids;
  ids.swap(batching_);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (uint64_t id : ids) {
    RegionPeer* p = FindPeer(id);
    if (p == nullptr) continue;
    Touch(p);
    if (!p->proposing.empty()) {
      std::vector<std::pair<std::string, RegionPeer::Proposal>> batch;
      batch.swap(p->proposing);
      const uint64_t term_now = p->node->CurrentTerm().value();
      const uint64_t region = p->id();
      std::erase_if(batch, [term_now, region](auto& item) {
        RegionPeer::Proposal& pr = item.second;
        if (pr.only_term == 0 || pr.only_term == term_now) return false;
        pr.done(NotLeaderResponse(region, 0));
        return true;
      });
      if (!batch.empty()) ProposeBatch(p, std::move(batch));
    }
    if (!p->reading.empty() && LeaseNowNs() < LeaseUntil(p)) {
      // The lease confirms the leadership these reads need: they wait only for the apply of
      // what is committed now (which bounds every commit index sent so far), not for a
      // heartbeat round. These are the reads ReadUnderLease turned away while an apply was
      // pending.
      const uint64_t index = p->node->Committed().value();
      counters_.lease_reads += p->reading.size();
      for (auto& r : p->reading) p->reads_waiting_apply.emplace(index, std::move(r));
      p->reading.clear();
      ServeAppliedReads(p);
    }
    if (!p->reading.empty()) {
      std::string ctx = ReadCtx(next_read_id_++);
      auto& reads = p->reads_waiting_index[ctx];
      reads.swap(p->reading);
      p->node->ReadIndex(std::move(ctx));
    }
    ListReads(p);
  }
}

void Store::CheckTimeouts(int64_t now) {
  const region::RegionResponse timed_out =
      TimeoutResponse("request timed out; its outcome is unknown");
  for (auto& [id, p] : peers_) {
    for (auto it = p->proposals.begin(); it != p->proposals.end();) {
      if (it->second.deadline_ms > now) {
        ++it;
        continue;
      }
      counters_.proposals_failed++;
      if (it->second.hold) p->settling.push_back({it->first, it->second.hold});
      it->second.done(timed_out);
      it = p->proposals.erase(it);
    }
    if (!p->settling.empty()) {
      // Once whatever entry holds that index has applied here: reads this replica confirmed
      // earlier may still be served, and they must not pass the commit (docs §3a).
      const uint64_t applied = p->apply.applied_index();
      std::erase_if(p->settling, [&](const RegionPeer::Settling& s) { return s.index <= applied; });
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
        r.done(r.deadline_ms <= now ? TimeoutResponse("read timed out waiting for the leader")
                                    : NotLeaderResponse(p->id(), 0));
      }
      it = p->reads_waiting_index.erase(it);
    }
    for (auto it = p->reads_waiting_apply.begin(); it != p->reads_waiting_apply.end();) {
      if (it->second.deadline_ms > now) {
        ++it;
        continue;
      }
      it->second.done(TimeoutResponse("read timed out waiting for apply"));
      it = p->reads_waiting_apply.erase(it);
    }
  }
}

}  // namespace micedb::store
