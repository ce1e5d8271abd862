// Conversion of rocksdb::Status into our Status, at the edge of the storage module.
// Internal to src/storage.
#pragma once

#include <string_view>

#include <rocksdb/status.h>

#include "common/status.h"

namespace micedb::storage {

// `context` names the operation ("Get(raft)", "open /data/x") and starts the message.
// Mapping: NotFound -> NotFound, Corruption -> Corruption, IOError -> IoError (out of space ->
// ResourceExhausted), InvalidArgument -> InvalidArgument, NotSupported -> NotSupported,
// Busy and TryAgain -> Busy, TimedOut -> TimedOut, Aborted -> Aborted, ShutdownInProgress ->
// Unavailable, anything else -> Internal.
Status FromRocks(const rocksdb::Status& s, std::string_view context);

}  // namespace micedb::storage
