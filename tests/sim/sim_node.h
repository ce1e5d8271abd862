// SimNode: one simulated server. What survives a crash is `durable` (the MemoryStorage the
// Ready handler writes); everything else — the RawNode, the state machine, the Ready being
// handled, queued input, the clients' pending requests — is volatile and is dropped by a crash.
// A plain holder driven by Cluster; not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raft/memory_storage.h"
#include "raft/raw_node.h"
#include "tests/sim/kv_state_machine.h"

namespace micedb::sim {

// A write a client proposed through this node, waiting to learn its fate.
struct PendingProposal {
  uint64_t op_id = 0;
  Term term;  // where ProposeWithIndex put it (the index is the map key)
};

// A read whose ReadState has arrived, waiting until the state machine reaches its index.
struct AwaitingRead {
  uint64_t read_id = 0;
  LogIndex index;
};

struct SimNode {
  explicit SimNode(NodeId node_id) : id(node_id) {}
  SimNode(const SimNode&) = delete;  // the RawNode points into `durable`
  SimNode& operator=(const SimNode&) = delete;

  bool up() const { return raw != nullptr; }
  // True between GetReady and Advance: input is queued until the Ready is done.
  bool busy() const { return ready.has_value(); }

  const NodeId id;

  // Durable: survives crashes.
  raft::MemoryStorage durable;
  LogIndex commit_checked;  // commit indexes up to here were reported to the LogChecker
  Term leader_checked;      // last term in which this node's log was checked as a leader's

  // Volatile: reset by a crash.
  std::unique_ptr<raft::RawNode> raw;  // null while the node is down
  uint64_t incarnation = 0;            // bumped by every crash; stale timers compare it
  int tick_interval = 10;
  KvStateMachine kv;
  raft::ConfState conf;  // membership as of kv.applied()
  std::optional<raft::Ready> ready;
  bool ready_scheduled = false;
  // Nemesis: crash between persisting and sending the next Ready in which this node, as
  // leader, appends entries (they stay on this node only; for a new leader, its no-op) or
  // makes a higher commit index durable (the commit is then known here only).
  enum class CrashPoint { kNone, kLeaderAppend, kLeaderCommit };
  CrashPoint crash_at_send = CrashPoint::kNone;
  bool crash_armed = false;  // the Ready being handled matches crash_at_send
  std::deque<std::function<void()>> inbox;
  std::multimap<LogIndex, PendingProposal> proposals;
  std::map<std::string, uint64_t> read_ctx;  // ReadIndex ctx -> read id, until its ReadState
  std::vector<AwaitingRead> awaiting_reads;

  // Last known role (refreshed after every event that touched the node).
  raft::Role role = raft::Role::kFollower;
  Term term;
  NodeId leader;
};

}  // namespace micedb::sim
