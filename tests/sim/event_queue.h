// EventQueue: the simulation's clock. Events are ordered by virtual time and, at equal times,
// by the order they were pushed, so a run never depends on heap internals or real time.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <utility>
#include <vector>

namespace micedb::sim {

template <typename T>
class EventQueue {
 public:
  // Schedules `payload` at virtual time `at` (never before now()).
  void Push(int64_t at, T payload) {
    assert(at >= now_);
    heap_.push_back(Item{std::max(at, now_), next_seq_++, std::move(payload)});
    std::push_heap(heap_.begin(), heap_.end(), Later);
  }

  bool empty() const { return heap_.empty(); }
  size_t size() const { return heap_.size(); }
  int64_t now() const { return now_; }

  // Removes the earliest event and moves the clock to its time. Must not be empty.
  T Pop() {
    std::pop_heap(heap_.begin(), heap_.end(), Later);
    Item item = std::move(heap_.back());
    heap_.pop_back();
    now_ = item.time;
    return std::move(item.payload);
  }

 private:
  struct Item {
    int64_t time;
    uint64_t seq;
    T payload;
  };
  // std::push_heap builds a max-heap; "later" as the ordering puts the earliest on top.
  static bool Later(const Item& a, const Item& b) {
    return a.time != b.time ? a.time > b.time : a.seq > b.seq;
  }

  std::vector<Item> heap_;
  uint64_t next_seq_ = 0;
  int64_t now_ = 0;
};

}  // namespace micedb::sim
