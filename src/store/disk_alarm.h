// The store's disk alarm (etcd's NOSPACE alarm, adapted): what a failed engine write or a short
// disk means for the node. docs/operations.md "Disk full (NOSPACE)" is the operator's side.
//
//   kNoSpace  the disk is (nearly) full: the store proposes no new writes (clients get
//             NOSPACE) and serves reads; a write that failed for want of space is held and
//             retried, and the alarm clears by itself once space returns.
//   kFailed   any other write failure (an I/O error): retrying it is not known to be safe
//             (an fsync that failed may have dropped data), so the store stops its raft work
//             for good; the process stays up, /readyz says why, and the operator restarts it
//             once the disk is fixed.
//
// Thread-safe: every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "common/result.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace micedb::store {

enum class DiskAlarm : uint8_t { kNone = 0, kNoSpace = 1, kFailed = 2 };

// "none", "NOSPACE", "FAILED".
std::string_view DiskAlarmName(DiskAlarm alarm);

// What a failed engine write means: kNoSpace for ResourceExhausted (RocksDB's IOError with
// the NoSpace subcode, ENOSPC), kFailed for anything else.
DiskAlarm ClassifyWriteError(const Status& st);

// Bytes free to an unprivileged writer on the file system holding `path` (statvfs). IoError
// when it cannot be asked.
Result<uint64_t> FreeDiskBytes(const std::string& path);

class DiskAlarmState {
 public:
  DiskAlarm alarm() const { return alarm_.load(std::memory_order_acquire); }
  std::string reason() const EXCLUDES(mu_);
  // Raises `alarm` (a kFailed alarm is never replaced or cleared). True when this changed
  // the alarm: the caller logs it.
  bool Raise(DiskAlarm alarm, std::string reason) EXCLUDES(mu_);
  // Clears a kNoSpace alarm. True when one was cleared.
  bool ClearNoSpace() EXCLUDES(mu_);

 private:
  mutable std::mutex mu_;
  std::atomic<DiskAlarm> alarm_{DiskAlarm::kNone};
  std::string reason_ GUARDED_BY(mu_);
};

}  // namespace micedb::store
