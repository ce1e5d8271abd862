// Reading and writing SST files (RocksDB's table format, docs/storage.md). Both engines
// export and ingest through these, so a file written by one engine type can be ingested by
// the other. Internal to src/storage.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <rocksdb/options.h>

#include "common/result.h"
#include "common/status.h"
#include "storage/engine.h"
#include "storage/iterator.h"

namespace micedb::storage {

// Writes every entry of `it`, from SeekToFirst to the end, as puts into a new SST file at
// `path`, with the table settings of `options` (its comparator must be bytewise). With no
// entries, writes nothing and removes any file at `path`. On error no file is left; the error
// is the iterator's status or an IoError from the file system.
Result<ExportStats> WriteSstFile(Iterator& it, const rocksdb::Options& options,
                                 const std::string& path);

// Calls fn(key, value) for each entry of the SST file at `path`, in key order, after checking
// every block's checksum. Corruption for a damaged file; IoError when it cannot be read;
// NotSupported for a file holding deletions or merge operands (ExportSst writes only puts).
Status ReadSstFile(const std::string& path,
                   const std::function<void(std::string_view key, std::string_view value)>& fn);

}  // namespace micedb::storage
