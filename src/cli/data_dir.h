// The data directory of a node and the lock that keeps two processes out of it.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"

namespace micedb::cli {

// Holds an exclusive lock (flock on <dir>/LOCK) for as long as it lives. Not thread-safe;
// one per process and directory.
class DataDirLock {
 public:
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

  // Creates `dir` (and parents) if missing, then takes the lock. Errors, each naming the path:
  // InvalidArgument when `dir` exists and is not a directory, IoError when it cannot be created
  // or written, Busy when another process holds the lock (its pid is named when known).
  // A failed call changes nothing inside an existing directory.
  static Result<std::unique_ptr<DataDirLock>> Acquire(const std::string& dir);

  const std::string& dir() const { return dir_; }

 private:
  DataDirLock(std::string dir, int fd) : dir_(std::move(dir)), fd_(fd) {}
  std::string dir_;
  int fd_;
};

}  // namespace micedb::cli
