// Inflights: the MSG_APP messages sent to one follower and not yet acknowledged, bounded by
// count and by bytes (flow control for the replicate state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/strong_id.h"

namespace micedb::raft {

class Inflights {
 public:
  // max_bytes == 0 means no byte limit.
  Inflights(size_t max_count, uint64_t max_bytes)
      : max_count_(max_count), max_bytes_(max_bytes), ring_(max_count) {}

  // Records a message whose last entry is `last` and whose entries weigh `bytes`.
  void Add(LogIndex last, uint64_t bytes);
  // Forgets every message whose last entry is <= index (acknowledged).
  void FreeLE(LogIndex index);
  void Reset();

  bool Full() const { return count_ >= max_count_ || (max_bytes_ != 0 && bytes_ >= max_bytes_); }
  size_t count() const { return count_; }
  uint64_t bytes() const { return bytes_; }

 private:
  struct Item {
    LogIndex last;
    uint64_t bytes = 0;
  };
  size_t max_count_;
  uint64_t max_bytes_;
  std::vector<Item> ring_;
  size_t start_ = 0;
  size_t count_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace micedb::raft
