#include "storage/rocks_engine.h"

#include <filesystem>
#include <string_view>
#include <system_error>
#include <utility>

#include <algorithm>
#include <cstdarg>
#include <cstdio>

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/table_properties.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include "common/logging.h"
#include "storage/rocks_iterator.h"
#include "storage/rocks_status.h"
#include "storage/sst_file.h"

namespace micedb::storage {
namespace {

class RocksSnapshot final : public Snapshot {
 public:
  RocksSnapshot(rocksdb::DB* db, const rocksdb::Snapshot* snapshot)
      : db_(db), snapshot_(snapshot) {}
  ~RocksSnapshot() override { db_->ReleaseSnapshot(snapshot_); }

  const rocksdb::DB* db() const { return db_; }
  const rocksdb::Snapshot* get() const { return snapshot_; }

 private:
  rocksdb::DB* const db_;
  const rocksdb::Snapshot* const snapshot_;
};

// RocksDB's own messages, warnings and errors only, go to our log (module "rocksdb") rather than
// to a LOG file in the data directory: on a full disk RocksDB's file logger fails, and the
// library as Debian builds it (assertions on) then aborts the process while reporting the very
// error the store would recover from.
class SpdlogLogger final : public rocksdb::Logger {
 public:
  SpdlogLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char buf[1024];
    const int n = std::vsnprintf(buf, sizeof(buf), format, ap);  // NOLINT: a printf format
    std::string_view text(buf, n < 0 ? 0 : std::min<size_t>(n, sizeof(buf) - 1));
    while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    spdlog::logger* log = GetLogger("rocksdb");
    // Opening a new database, RocksDB reports the directory it is about to create as an
    // error ("Error when reading <dir> dir NotFound"); every first start would print it.
    const bool new_db = text.starts_with("Error when reading ") &&
                        text.find(" dir NotFound") != std::string_view::npos;
    if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL && !new_db) {
      log->error("{}", text);
    } else if (level == rocksdb::InfoLogLevel::WARN_LEVEL) {
      log->warn("{}", text);
    } else {
      log->info("{}", text);
    }
  }
};

rocksdb::Slice ToSlice(std::string_view s) { return rocksdb::Slice(s.data(), s.size()); }

const rocksdb::Snapshot* RocksSnapshotOf(const Snapshot* snapshot) {
  return snapshot == nullptr ? nullptr : static_cast<const RocksSnapshot*>(snapshot)->get();
}

Status BadCf(Cf cf) {
  return Status::InvalidArgument("column family id " + std::to_string(static_cast<int>(cf)) +
                                 " out of range");
}

rocksdb::DBOptions MakeDbOptions(const RocksOptions& options) {
  rocksdb::DBOptions db;
  db.create_if_missing = options.create_if_missing;
  db.create_missing_column_families = true;
  db.paranoid_checks = options.paranoid_checks;
  db.max_background_jobs = options.max_background_jobs;
  db.max_open_files = options.max_open_files;
  db.bytes_per_sync = options.bytes_per_sync;
  db.wal_bytes_per_sync = options.bytes_per_sync;
  db.db_write_buffer_size = options.total_write_buffer_bytes;
  db.info_log = std::make_shared<SpdlogLogger>();
  // Recover to the last consistent point of the log: a torn tail written after the last
  // sync is dropped, corruption before it stops the open (DESIGN §8, rule 3).
  db.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  return db;
}

rocksdb::ColumnFamilyOptions MakeCfOptions(const RocksOptions& options, Cf cf,
                                           const std::shared_ptr<rocksdb::Cache>& cache) {
  rocksdb::ColumnFamilyOptions cfo;
  cfo.write_buffer_size = options.write_buffer_bytes;
  cfo.max_write_buffer_number = options.max_write_buffers;
  cfo.level_compaction_dynamic_level_bytes = true;
  cfo.paranoid_file_checks = false;  // re-reading every written file costs too much here
  cfo.compression = rocksdb::kNoCompression;
  cfo.bottommost_compression = rocksdb::kDisableCompressionOption;
  if (options.compression && cf != Cf::kRaft) {
    cfo.compression_per_level.assign(static_cast<size_t>(cfo.num_levels), rocksdb::kLZ4Compression);
    cfo.compression_per_level[0] = rocksdb::kNoCompression;
    cfo.compression_per_level[1] = rocksdb::kNoCompression;
    cfo.compression = rocksdb::kLZ4Compression;
    cfo.bottommost_compression = rocksdb::kZSTD;
  }

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.format_version = 5;
  if (options.bloom_bits_per_key > 0) {
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(options.bloom_bits_per_key));
  }
  cfo.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  if (options.memtable_bloom && cf != Cf::kRaft) {
    // A small bloom filter over whole keys in each memtable: point reads that miss (the
    // request-id check on every replicated write looks up a key that is almost never there)
    // skip the skip-list search. Not on the raft family: its point reads are rare (start-up,
    // messages for unknown regions) and its inserts are most of the writes.
    cfo.memtable_whole_key_filtering = true;
    cfo.memtable_prefix_bloom_size_ratio = 0.02;
  }
  return cfo;
}

}  // namespace

Result<std::unique_ptr<RocksEngine>> RocksEngine::Open(const std::string& dir,
                                                       const RocksOptions& options) {
  std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  descriptors.reserve(kNumCfs);
  for (Cf cf : kAllCfs) {
    descriptors.emplace_back(std::string(CfName(cf)), MakeCfOptions(options, cf, cache));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw_db = nullptr;
  rocksdb::Status s =
      rocksdb::DB::Open(MakeDbOptions(options), dir, descriptors, &handles, &raw_db);
  if (!s.ok()) {
    // RocksDB reports a held LOCK file as an I/O error; it means someone else has the store.
    if (s.IsIOError() && s.ToString().find("/LOCK") != std::string::npos) {
      return Status::Busy("data directory " + dir +
                          " is in use by another engine or process: " + s.ToString());
    }
    return FromRocks(s, "open RocksDB in " + dir);
  }
  std::unique_ptr<rocksdb::DB> db(raw_db);
  std::array<rocksdb::ColumnFamilyHandle*, kNumCfs> by_cf{};
  for (size_t i = 0; i < kNumCfs; ++i) {
    by_cf[i] = handles[i];
  }
  return std::unique_ptr<RocksEngine>(new RocksEngine(dir, std::move(cache), std::move(db), by_cf));
}

RocksEngine::RocksEngine(std::string dir, std::shared_ptr<rocksdb::Cache> cache,
                         std::unique_ptr<rocksdb::DB> db,
                         std::array<rocksdb::ColumnFamilyHandle*, kNumCfs> handles)
    : dir_(std::move(dir)), cache_(std::move(cache)), db_(std::move(db)), handles_(handles) {}

RocksEngine::~RocksEngine() {
  for (rocksdb::ColumnFamilyHandle* handle : handles_) {
    db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
  }
  // Close reports only errors of background work already lost; a destructor cannot act on it.
  db_->Close().PermitUncheckedError();
}

Status RocksEngine::CheckSnapshot(const Snapshot* snapshot) const {
  if (snapshot == nullptr) {
    return Status::OK();
  }
  const auto* ours = dynamic_cast<const RocksSnapshot*>(snapshot);
  if (ours == nullptr || ours->db() != db_.get()) {
    return Status::InvalidArgument("snapshot does not belong to this RocksEngine");
  }
  return Status::OK();
}

Result<std::string> RocksEngine::Get(Cf cf, std::string_view key, const ReadOptions& options) {
  if (!IsValidCf(cf)) {
    return BadCf(cf);
  }
  MICEDB_RETURN_IF_ERROR(CheckSnapshot(options.snapshot));
  rocksdb::ReadOptions read_options;
  read_options.snapshot = RocksSnapshotOf(options.snapshot);
  std::string value;
  rocksdb::Status s = db_->Get(read_options, handles_[CfIndex(cf)], ToSlice(key), &value);
  if (s.IsNotFound()) {
    return Status::NotFound("key not found in column family " + std::string(CfName(cf)));
  }
  if (!s.ok()) {
    return FromRocks(s, "Get(" + std::string(CfName(cf)) + ")");
  }
  return value;
}

std::unique_ptr<Iterator> RocksEngine::NewIterator(Cf cf, const ReadOptions& options) {
  if (!IsValidCf(cf)) {
    return NewErrorIterator(BadCf(cf));
  }
  Status st = CheckSnapshot(options.snapshot);
  if (!st.ok()) {
    return NewErrorIterator(std::move(st));
  }
  return NewRocksIterator(db_.get(), handles_[CfIndex(cf)], cf, RocksSnapshotOf(options.snapshot),
                          options.lower_bound, options.upper_bound);
}

std::unique_ptr<Snapshot> RocksEngine::GetSnapshot() {
  return std::make_unique<RocksSnapshot>(db_.get(), db_->GetSnapshot());
}

Status RocksEngine::Write(const WriteBatch& batch, const WriteOptions& options) {
  MICEDB_RETURN_IF_ERROR(batch.Validate());
  rocksdb::WriteBatch rocks_batch;
  for (const WriteBatch::Op& op : batch.ops()) {
    rocksdb::ColumnFamilyHandle* handle = handles_[CfIndex(op.cf)];
    rocksdb::Status s;
    switch (op.type) {
      case WriteBatch::OpType::kPut:
        s = rocks_batch.Put(handle, op.key, op.value);
        break;
      case WriteBatch::OpType::kDelete:
        s = rocks_batch.Delete(handle, op.key);
        break;
      case WriteBatch::OpType::kDeleteRange:
        if (op.key == op.value) {
          continue;  // empty range: nothing to record
        }
        s = rocks_batch.DeleteRange(handle, op.key, op.value);
        break;
    }
    MICEDB_RETURN_IF_ERROR(FromRocks(s, "build write batch"));
  }
  if (rocks_batch.Count() == 0) {
    // Nothing to log; a sync request still covers the writes before it.
    return options.sync ? SyncWAL() : Status::OK();
  }
  rocksdb::WriteOptions write_options;
  write_options.sync = options.sync;
  return FromRocks(db_->Write(write_options, &rocks_batch), "Write");
}

Status RocksEngine::Resume() { return FromRocks(db_->Resume(), "Resume"); }

Status RocksEngine::SyncWAL() { return FromRocks(db_->SyncWAL(), "SyncWAL"); }

Status RocksEngine::Flush() {
  rocksdb::FlushOptions options;
  options.wait = true;
  std::vector<rocksdb::ColumnFamilyHandle*> all(handles_.begin(), handles_.end());
  return FromRocks(db_->Flush(options, all), "Flush");
}

Result<uint64_t> RocksEngine::ApproximateSize(Cf cf, std::string_view begin, std::string_view end) {
  if (!IsValidCf(cf)) {
    return BadCf(cf);
  }
  if (begin >= end) {
    return uint64_t{0};
  }
  rocksdb::SizeApproximationOptions options;
  options.include_memtables = true;
  options.include_files = true;
  rocksdb::Range range(ToSlice(begin), ToSlice(end));
  uint64_t size = 0;
  MICEDB_RETURN_IF_ERROR(
      FromRocks(db_->GetApproximateSizes(options, handles_[CfIndex(cf)], &range, 1, &size),
                "ApproximateSize(" + std::string(CfName(cf)) + ")"));
  return size;
}

Result<uint64_t> RocksEngine::ApproximateKeys(Cf cf, std::string_view begin, std::string_view end) {
  if (!IsValidCf(cf)) {
    return BadCf(cf);
  }
  if (begin >= end) {
    return uint64_t{0};
  }
  rocksdb::Range range(ToSlice(begin), ToSlice(end));
  rocksdb::TablePropertiesCollection tables;
  MICEDB_RETURN_IF_ERROR(
      FromRocks(db_->GetPropertiesOfTablesInRange(handles_[CfIndex(cf)], &range, 1, &tables),
                "ApproximateKeys(" + std::string(CfName(cf)) + ")"));
  // Each file counted in proportion to its bytes inside the range: a small region inside one
  // big file must not report the whole file's keys.
  uint64_t entries = 0;
  uint64_t data_bytes = 0;
  for (const auto& [file, props] : tables) {
    if (props->num_entries > props->num_deletions) {
      entries += props->num_entries - props->num_deletions;
    }
    data_bytes += props->data_size;
  }
  uint64_t keys = 0;
  if (entries > 0 && data_bytes > 0) {
    rocksdb::SizeApproximationOptions options;
    options.include_memtables = false;
    options.include_files = true;
    uint64_t in_range = 0;
    MICEDB_RETURN_IF_ERROR(
        FromRocks(db_->GetApproximateSizes(options, handles_[CfIndex(cf)], &range, 1, &in_range),
                  "ApproximateKeys(" + std::string(CfName(cf)) + ")"));
    const long double share = static_cast<long double>(in_range) / data_bytes;
    keys = std::min<uint64_t>(entries, static_cast<uint64_t>(share * entries));
  }
  uint64_t mem_keys = 0;
  uint64_t mem_bytes = 0;
  db_->GetApproximateMemTableStats(handles_[CfIndex(cf)], range, &mem_keys, &mem_bytes);
  return keys + mem_keys;
}

Status RocksEngine::Checkpoint(const std::string& dir) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec)) {
    return Status::AlreadyExists("checkpoint directory " + dir + " already exists");
  }
  rocksdb::Checkpoint* raw = nullptr;
  MICEDB_RETURN_IF_ERROR(FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "Checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  return FromRocks(checkpoint->CreateCheckpoint(dir), "Checkpoint to " + dir);
}

Result<ExportStats> RocksEngine::ExportSst(Cf cf, const ReadOptions& range,
                                           const std::string& path) {
  std::unique_ptr<Iterator> it = NewIterator(cf, range);
  MICEDB_RETURN_IF_ERROR(it->status());
  // The family's own table settings (compression, filters, block size) apply to the file.
  rocksdb::Options options = db_->GetOptions(handles_[CfIndex(cf)]);
  return WriteSstFile(*it, options, path);
}

Status RocksEngine::IngestSst(Cf cf, const std::vector<std::string>& paths) {
  if (!IsValidCf(cf)) {
    return BadCf(cf);
  }
  if (paths.empty()) {
    return Status::OK();
  }
  rocksdb::IngestExternalFileOptions options;
  options.move_files = false;          // the caller keeps its files
  options.write_global_seqno = false;  // and they stay byte-for-byte as written
  options.verify_checksums_before_ingest = true;
  options.snapshot_consistency = true;  // open snapshots keep not seeing the new keys
  options.allow_blocking_flush = true;
  return FromRocks(db_->IngestExternalFile(handles_[CfIndex(cf)], paths, options),
                   "IngestSst(" + std::string(CfName(cf)) + ")");
}

}  // namespace micedb::storage
