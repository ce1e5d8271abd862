// An Iterator over one RocksDB column family. Internal to src/storage.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "storage/cf.h"
#include "storage/iterator.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class Snapshot;
}  // namespace rocksdb

namespace micedb::storage {

// Iterates `handle` of `db` within [lower, upper) as of `snapshot` (null: a view taken now).
// `db`, `handle` and `snapshot` are not owned and must outlive the iterator.
std::unique_ptr<Iterator> NewRocksIterator(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* handle,
                                           Cf cf, const rocksdb::Snapshot* snapshot,
                                           std::optional<std::string> lower,
                                           std::optional<std::string> upper);

}  // namespace micedb::storage
