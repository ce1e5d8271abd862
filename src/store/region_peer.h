// One region's replica on a store: its descriptor, raft node and log, apply state, and the
// requests waiting on it. Owned and used by the store's loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "micedb/store.pb.h"
#include "raft/raw_node.h"
#include "store/peer_storage.h"
#include "store/store.h"

namespace micedb::store {

// Stops the process. Left for what the store cannot yet survive (a failed snapshot install,
// an engine read that fails during apply); a failed write raises the disk alarm instead
// (store/disk_alarm.h).
[[noreturn]] void StoreFatal(const std::string& what);

class RegionPeer {
 public:
  RegionPeer(const RegionDescriptor& desc) : desc(desc), storage(desc.id(), desc.conf_state()) {}

  uint64_t id() const { return desc.id(); }
  bool initialized() const { return desc.conf_state().voters_size() > 0; }
  bool Contains(std::string_view engine_key) const {
    return engine_key >= desc.start_key() &&
           (desc.end_key().empty() || engine_key < desc.end_key());
  }

  RegionDescriptor desc;
  PeerStorage storage;
  std::unique_ptr<raft::RawNode> node;
  ApplyState apply;
  raft::SoftState soft;
  bool removed = false;  // this node was removed from the region; destroy after the round
  // A leader whose configuration (this conf_ver) does not name this store said so (MSG_GONE):
  // the replica is destroyed before the next round, with a tombstone at that conf_ver.
  uint64_t gone_conf_ver = 0;
  // The ids of the last regions split off this one: a request refused for a stale epoch is
  // told their descriptors too, so that the router finds its key's new region at once.
  std::vector<uint64_t> split_children;
  // A merge into this region took the replica over in this round: its state is deleted, and it
  // is destroyed at the round's end (Store::FinishMerges). Nothing of it is written meanwhile.
  uint64_t merged_into = 0;
  // The epoch of the last snapshot installed here (SnapshotEpochKey; 0/0: none): an epoch
  // past a merge's freeze proves the merge cannot commit only if it came by the log.
  RegionEpoch snapshot_epoch;
  // A store that holds the region's tombstone said a merge took it over (OnMergedGone), while
  // this store's replica of the target may still need it: from then on it counts as frozen
  // for that merge (OverlappingRegion, DropMergedSources) although it never applied the freeze.
  std::optional<MergeState> merged_away;
  // When a split made this replica (StoreOptions::clock, ms); 0: not made by a split here.
  int64_t split_born_ms = 0;

  struct Proposal {
    uint64_t term;
    ResponseCallback done;
    int64_t deadline_ms;
    uint64_t only_term = 0;  // not 0: appended only in this term, else NotLeader
    // What the state machine holds while the entry is on its way (memory locks of a one-phase
    // commit, StateMachine::BeforeProposeTxn): let go when the last reference goes.
    std::shared_ptr<void> hold = nullptr;
  };
  std::map<uint64_t, Proposal> proposals;  // by log index
  // The holds of proposals that timed out (their entries may still apply): kept until the
  // entry at `index` (this one or another) has applied here.
  struct Settling {
    uint64_t index;
    std::shared_ptr<void> hold;
  };
  std::vector<Settling> settling;

  struct Read {
    region::RegionRequest request;
    ResponseCallback done;
    int64_t deadline_ms;
    // While waiting for its read index: past this the request (or its answer) is presumed
    // lost and the read fails with Unavailable, so the caller asks again.
    int64_t resend_ms = 0;
  };
  // Requests that arrived during this round's input phase. They are handed to raft together
  // at its end (Store::StartBatches): one log append and one MSG_APP per follower for all
  // the writes, one ReadIndex (one heartbeat round) for all the reads.
  std::vector<std::pair<std::string, Proposal>> proposing;  // (entry data, proposal)
  std::vector<Read> reading;
  // Reads sharing one ReadIndex request, by its ctx, in arrival order.
  std::map<std::string, std::vector<Read>> reads_waiting_index;
  std::multimap<uint64_t, Read> reads_waiting_apply;  // by read index

  // Monotonic time (ns) of the last kTickTimes Tick() calls, by tick count modulo the size
  // (slot 0 starts as the creation time): the real time behind raft's lease ticks.
  static constexpr uint64_t kTickTimes = 64;
  std::array<int64_t, kTickTimes> tick_ns{};
  // A lease needs a heartbeat round sent at this tick or later (Store::CheckClockGap).
  uint64_t lease_floor_tick = 0;
  // As last published for ReadUnderLease (lease_until_ns 0 = none).
  int64_t lease_until_ns = 0;
  uint64_t lease_commit = 0;
  uint64_t lease_applied = 0;
  // The commit index at the start of the current round (none yet: reads fall back).
  uint64_t round_commit = UINT64_MAX;

  // At-most-once records (store/apply.h SweepDedupRecords, Store::SweepDedup): the latest
  // leader's clock applied here, and where the sweep under way goes on (empty: none is).
  int64_t dedup_horizon_ms = 0;
  std::string dedup_cursor;
  // The oldest request time among the records here: 0 unknown (after a restart or a
  // snapshot: a sweep must look), INT64_MAX none. A sweep starts only once it is old enough to
  // go, so each record is scanned a few times in its life rather than at every sweep.
  int64_t dedup_oldest_ms = 0;
  // The sweep under way: the oldest record it kept, and the oldest one written since it began.
  int64_t dedup_pass_oldest_ms = INT64_MAX;
  int64_t dedup_new_oldest_ms = INT64_MAX;

  // Hibernation (docs/sharding.md §5). A leader with nothing to do for StoreOptions::
  // hibernate_ticks asks (kAsking: its heartbeats carry raft.Message.hibernate); a follower
  // asked stops (kAsleep) and says so in its answers; once every member has, so does the leader.
  // A replica asleep is not ticked.
  enum class Sleep : uint8_t { kAwake, kAsking, kAsleep };
  Sleep sleep = Sleep::kAwake;
  int quiet_ticks = 0;
  uint64_t quiet_reads = 0;          // keys read here when the quiet ticks began (lease reads)
  std::vector<uint64_t> sleep_acks;  // asking leader: the members that stopped
  // Something reached the raft node (a message, a tick, a proposal, a report) since the last
  // round: the replica is on Store::touched_, and only those are looked at for a Ready or a
  // lease change (RunRound).
  bool touched = false;
  // Reads wait here: the replica is on Store::reads_waiting_ (ServeApplied looks at those and
  // at the round's replicas only).
  bool reads_listed = false;

  // The engine view behind the last snapshot handed to the core, kept until it is sent.
  uint64_t snap_index = 0;
  std::shared_ptr<storage::Snapshot> snap;
};

}  // namespace micedb::store
