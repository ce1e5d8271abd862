#include "raft/read_only.h"

#include <utility>

namespace micedb::raft {

std::vector<ReadRequest> ReadOnly::TakeWaiting() {
  std::vector<ReadRequest> out;
  out.swap(waiting_);
  return out;
}

std::vector<ReadRequest> ReadOnly::TakeConfirmed(uint64_t confirmed_round) {
  std::vector<ReadRequest> out;
  while (!pending_.empty() && pending_.front().round <= confirmed_round) {
    out.push_back(std::move(pending_.front()));
    pending_.pop_front();
  }
  return out;
}

std::vector<ReadRequest> ReadOnly::TakeAll() {
  std::vector<ReadRequest> out = TakeWaiting();
  for (ReadRequest& r : pending_) {
    out.push_back(std::move(r));
  }
  pending_.clear();
  return out;
}

}  // namespace micedb::raft
