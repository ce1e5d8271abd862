// ReadOnly: the leader's queue of ReadIndex requests (thesis §6.4). A request records the
// commit index when it arrived and the heartbeat round sent right after it; once a majority
// of voters has answered that round (or a later one), leadership at arrival time is confirmed
// and the read may be served at the recorded index.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "common/strong_id.h"

namespace micedb::raft {

struct ReadRequest {
  std::string ctx;
  NodeId from;     // the node that asked (the leader itself for local reads)
  LogIndex index;  // commit index when the request arrived
  uint64_t round = 0;
};

class ReadOnly {
 public:
  // Requests that arrived before the leader committed an entry of its term: their commit index
  // would not be known to be current yet (§6.4 step 1).
  void AddWaiting(ReadRequest r) { waiting_.push_back(std::move(r)); }
  std::vector<ReadRequest> TakeWaiting();
  bool HasWaiting() const { return !waiting_.empty(); }

  void Add(ReadRequest r) { pending_.push_back(std::move(r)); }
  // Every request whose round is <= confirmed_round, oldest first.
  std::vector<ReadRequest> TakeConfirmed(uint64_t confirmed_round);
  bool HasPending() const { return !pending_.empty(); }
  // Everything queued (on losing leadership).
  std::vector<ReadRequest> TakeAll();

 private:
  std::vector<ReadRequest> waiting_;
  std::deque<ReadRequest> pending_;  // rounds are non-decreasing
};

}  // namespace micedb::raft
