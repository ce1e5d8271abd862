#include "storage/fault_engine.h"

#include <algorithm>
#include <utility>

namespace micedb::storage {

FaultEngine::FaultEngine()
    : live_(std::make_unique<MemEngine>()), durable_(std::make_unique<MemEngine>()) {}

FaultEngine::~FaultEngine() = default;

void FaultEngine::MakeDurable(size_t count) {
  count = std::min(count, unsynced_.size());
  for (size_t i = 0; i < count; ++i) {
    // These batches were validated and applied to live_, and a MemEngine write fails only on
    // validation, so they apply to durable_ too.
    durable_->Write(unsynced_[i], WriteOptions{}).IgnoreError();
  }
  unsynced_.clear();
}

void FaultEngine::SimulatePowerLoss(size_t keep_unsynced) {
  std::lock_guard<std::mutex> lock(mu_);
  MakeDurable(keep_unsynced);
  live_ = durable_->Clone();
}

void FaultEngine::FailNextWrites(int count) {
  std::lock_guard<std::mutex> lock(mu_);
  failing_writes_ = std::max(count, 0);
}

void FaultEngine::SetWriteFault(Status error, std::function<bool(const WriteBatch&)> matches) {
  std::lock_guard<std::mutex> lock(mu_);
  fault_ = std::move(error);
  fault_matches_ = std::move(matches);
}

Status FaultEngine::CheckWritable(const WriteBatch* batch) {
  if (!stopped_.ok()) {
    return stopped_;
  }
  if (!fault_.ok() && (!fault_matches_ || (batch != nullptr && fault_matches_(*batch)))) {
    stopped_ = fault_;
    return fault_;
  }
  return Status::OK();
}

Status FaultEngine::Resume() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!fault_.ok()) {
    return fault_;
  }
  stopped_ = Status::OK();
  return Status::OK();
}

size_t FaultEngine::UnsyncedWriteCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unsynced_.size();
}

Result<std::string> FaultEngine::Get(Cf cf, std::string_view key, const ReadOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  return live_->Get(cf, key, options);
}

std::unique_ptr<Iterator> FaultEngine::NewIterator(Cf cf, const ReadOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  return live_->NewIterator(cf, options);
}

std::unique_ptr<Snapshot> FaultEngine::GetSnapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  return live_->GetSnapshot();
}

Status FaultEngine::Write(const WriteBatch& batch, const WriteOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  if (failing_writes_ > 0) {
    --failing_writes_;
    return Status::IoError("injected write failure (FaultEngine)");
  }
  MICEDB_RETURN_IF_ERROR(CheckWritable(&batch));
  MICEDB_RETURN_IF_ERROR(live_->Write(batch, WriteOptions{}));
  unsynced_.push_back(batch);
  if (options.sync) {
    MakeDurable(unsynced_.size());
  }
  return Status::OK();
}

Status FaultEngine::SyncWAL() {
  std::lock_guard<std::mutex> lock(mu_);
  MICEDB_RETURN_IF_ERROR(CheckWritable(nullptr));
  MakeDurable(unsynced_.size());
  return Status::OK();
}

Status FaultEngine::Flush() { return SyncWAL(); }

Result<uint64_t> FaultEngine::ApproximateSize(Cf cf, std::string_view begin, std::string_view end) {
  std::lock_guard<std::mutex> lock(mu_);
  return live_->ApproximateSize(cf, begin, end);
}

Result<uint64_t> FaultEngine::ApproximateKeys(Cf cf, std::string_view begin, std::string_view end) {
  std::lock_guard<std::mutex> lock(mu_);
  return live_->ApproximateKeys(cf, begin, end);
}

Status FaultEngine::Checkpoint(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  return live_->Checkpoint(dir);
}

Result<ExportStats> FaultEngine::ExportSst(Cf cf, const ReadOptions& range,
                                           const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  return live_->ExportSst(cf, range, path);
}

Status FaultEngine::IngestSst(Cf cf, const std::vector<std::string>& paths) {
  std::lock_guard<std::mutex> lock(mu_);
  // RocksDB flushes memtable data overlapping the files and syncs its manifest before an
  // ingestion returns; model that (slightly generously) as a durable point for everything
  // written before it.
  MICEDB_RETURN_IF_ERROR(live_->IngestSst(cf, paths));
  MakeDurable(unsynced_.size());
  return durable_->IngestSst(cf, paths);
}

}  // namespace micedb::storage
