#include "storage/rocks_status.h"

#include <string>

namespace micedb::storage {

Status FromRocks(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) {
    return Status::OK();
  }
  std::string msg(context);
  msg += ": ";
  msg += s.ToString();
  switch (s.code()) {
    case rocksdb::Status::kNotFound:
      return Status::NotFound(msg);
    case rocksdb::Status::kCorruption:
      return Status::Corruption(msg);
    case rocksdb::Status::kIOError:
      if (s.IsNoSpace()) {
        return Status::ResourceExhausted(msg);
      }
      return Status::IoError(msg);
    case rocksdb::Status::kInvalidArgument:
      return Status::InvalidArgument(msg);
    case rocksdb::Status::kNotSupported:
      return Status::NotSupported(msg);
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTryAgain:
      return Status::Busy(msg);
    case rocksdb::Status::kTimedOut:
      return Status::TimedOut(msg);
    case rocksdb::Status::kAborted:
      return Status::Aborted(msg);
    case rocksdb::Status::kShutdownInProgress:
      return Status::Unavailable(msg);
    default:
      return Status::Internal(msg);
  }
}

}  // namespace micedb::storage
