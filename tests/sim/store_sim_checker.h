// RegisterChecker: linearizability of single-key reads and writes seen only from the clients'
// side, for the store simulation (docs/simulation.md §6). Every write stores a value never
// written before, so a read's value names the one write it reads from.
//
// Observations are stamped in the order they are made (the order of events in the run), which
// is real-time order. A write is *visible* from the moment its client was told it succeeded,
// or a read returned its value, whichever came first: from then on it precedes, in every
// linearization, each write invoked later. A read that returns value v (written by w_v) is a
// violation when
//   - no write of v to that key was ever invoked, or it was invoked after the read ended;
//   - it returns nothing while some write to the key was visible before the read began;
//   - some write w to the key was visible before the read began and w_v was visible before w
//     was invoked (so w_v precedes w precedes the read: v was overwritten).
// These are necessary conditions of linearizability, checked as each read returns, so a report
// is always a real violation and names the read.
//
// Finish() then decides linearizability of each key's whole history exactly, by the zone test
// of Gibbons and Korach ("Testing shared memories", SIAM J. Comput. 1997) for registers whose
// writes have unique values: a write and the reads of its value form a cluster; its zone runs
// from the earliest response in it (f) to the latest invocation in it (s). When f < s the zone
// is *forward* (the cluster must be linearized across [f, s]), otherwise *backward*. The history
// is linearizable iff no two forward zones overlap and no backward zone lies inside a forward
// one (and no read ends before its write begins). Writes whose outcome is unknown (never
// acknowledged) respond at infinity; those nobody read are left out (they may not have taken
// effect). Reads of an absent key read from a virtual write before everything.
//
// Not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "tests/sim/violation.h"

namespace micedb::sim {

class RegisterChecker {
 public:
  // Violations are appended to *out, which must outlive the checker.
  explicit RegisterChecker(Violations* out) : out_(out) {}

  // A client starts writing `value` (unique in the run) to `key`.
  void WriteInvoked(const std::string& key, const std::string& value);
  // The client was told the write of `value` succeeded.
  void WriteAcked(const std::string& value);
  // A client starts reading `key`; returns the read's id.
  uint64_t ReadInvoked(const std::string& key);
  // Read `id` returned `value` (nullopt: the key was absent). Checks it, then ends it.
  void ReadReturned(uint64_t id, const std::optional<std::string>& value);

  // The exact per-key check above, over everything observed so far.
  void Finish();

  uint64_t reads_checked() const { return reads_checked_; }
  uint64_t writes_acked() const { return writes_acked_; }

 private:
  static constexpr uint64_t kNever = UINT64_MAX;
  struct Write {
    std::string key;
    uint64_t invoked = 0;
    uint64_t visible = kNever;
    uint64_t acked = kNever;
  };
  struct Done {  // a read that returned
    std::optional<std::string> value;
    uint64_t invoked = 0;
    uint64_t returned = 0;
  };
  void CheckKey(const std::string& key, const std::vector<Done>& reads);
  struct Read {
    std::string key;
    uint64_t invoked = 0;
  };

  Violations* out_;
  uint64_t clock_ = 0;
  uint64_t next_read_ = 1;
  uint64_t reads_checked_ = 0;
  uint64_t writes_acked_ = 0;
  std::map<std::string, Write> writes_;                     // by value
  std::map<std::string, std::vector<std::string>> by_key_;  // key -> values written
  std::map<uint64_t, Read> reads_;                          // pending
  std::map<std::string, std::vector<Done>> done_;           // key -> reads that returned
};

}  // namespace micedb::sim
