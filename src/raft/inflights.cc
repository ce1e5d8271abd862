#include "raft/inflights.h"

#include <cassert>

namespace micedb::raft {

void Inflights::Add(LogIndex last, uint64_t bytes) {
  assert(count_ < max_count_);
  if (count_ >= max_count_) {
    return;
  }
  size_t slot = (start_ + count_) % max_count_;
  ring_[slot] = Item{last, bytes};
  ++count_;
  bytes_ += bytes;
}

void Inflights::FreeLE(LogIndex index) {
  while (count_ > 0 && ring_[start_].last <= index) {
    bytes_ -= ring_[start_].bytes;
    start_ = (start_ + 1) % max_count_;
    --count_;
  }
  if (count_ == 0) {
    start_ = 0;
  }
}

void Inflights::Reset() {
  start_ = 0;
  count_ = 0;
  bytes_ = 0;
}

}  // namespace micedb::raft
