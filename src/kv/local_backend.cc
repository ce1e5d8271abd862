#include "kv/local_backend.h"

#include <future>

#include "common/coding.h"

namespace micedb::kv {
namespace {

// Reads of one key are atomic by themselves; reads of several must not see half a round.
bool ReadsOneKey(const Command& cmd) {
  switch (cmd.op_case()) {
    case Command::kGet:
    case Command::kStrlen:
    case Command::kGetrange:
    case Command::kTtl:
    case Command::kType:
      return true;
    case Command::kMget:
      return cmd.mget().keys_size() <= 1;
    case Command::kExists:
      return cmd.exists().keys_size() <= 1;
    default:
      return false;
  }
}

}  // namespace

Result<std::unique_ptr<LocalBackend>> LocalBackend::Open(storage::Engine* engine,
                                                         const Clock* clock,
                                                         StateMachineOptions options) {
  LogIndex applied;
  Result<std::string> stored = engine->Get(storage::Cf::kRaft, kAppliedIndexKey);
  if (stored.ok()) {
    std::string_view in = *stored;
    uint64_t index = 0;
    if (!GetFixed64(&in, &index) || !in.empty()) {
      return Status::Corruption("kv local backend: bad applied index record");
    }
    applied = LogIndex(index);
  } else if (!stored.status().IsNotFound()) {
    return stored.status();
  }
  return std::unique_ptr<LocalBackend>(new LocalBackend(engine, clock, options, applied));
}

LocalBackend::LocalBackend(storage::Engine* engine, const Clock* clock, StateMachineOptions options,
                           LogIndex applied)
    : engine_(engine),
      clock_(clock),
      machine_(KeyRange{}, options),
      applied_(applied),
      batch_(engine) {
  apply_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "kv-apply");
    ApplyLoop();
  });
}

LocalBackend::~LocalBackend() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_one();
  apply_thread_.join();
}

LogIndex LocalBackend::applied_index() const {
  std::lock_guard<std::mutex> lock(mu_);
  return applied_;
}

void LocalBackend::Execute(Command cmd, ReadMode mode, Callback done) {
  if (!IsWriteCommand(cmd)) {
    std::shared_lock<std::shared_mutex> lock(engine_mu_, std::defer_lock);
    if (!ReadsOneKey(cmd)) lock.lock();
    Result<CommandResult> result = machine_.Read(cmd, engine_, nullptr, clock_->NowWallMillis());
    if (lock.owns_lock()) lock.unlock();
    done(std::move(result));
    return;
  }
  if (cmd.now_ms() == 0) cmd.set_now_ms(clock_->NowWallMillis());
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(PendingWrite{std::move(cmd), std::move(done)});
  }
  work_cv_.notify_one();
}

void LocalBackend::ApplyLoop() {
  std::vector<PendingWrite> round;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued is done
      while (!queue_.empty() && round.size() < kMaxRoundWrites) {
        round.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    ApplyRound(round);
    round.clear();
  }
}

void LocalBackend::ApplyRound(std::vector<PendingWrite>& round) {
  LogIndex index = applied_index();
  std::vector<Result<CommandResult>> results;
  results.reserve(round.size());
  Status failed;
  batch_.Reset();
  for (const PendingWrite& write : round) {
    ++index;
    Result<CommandResult> result = machine_.Apply(write.cmd, index, batch_);
    if (!result.ok()) {
      failed = result.status();
      break;
    }
    results.push_back(std::move(result));
  }
  if (failed.ok()) {
    std::string record;
    PutFixed64(&record, index.value());
    batch_.mutable_write_batch()->Put(storage::Cf::kRaft, kAppliedIndexKey, record);
    storage::WriteOptions options;
    options.sync = true;
    std::unique_lock<std::shared_mutex> lock(engine_mu_);
    failed = engine_->Write(batch_.write_batch(), options);
  }
  batch_.Reset();
  if (failed.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    applied_ = index;
  }
  for (size_t i = 0; i < round.size(); ++i) {
    round[i].done(failed.ok() ? std::move(results[i]) : Result<CommandResult>(failed));
  }
}

Result<int64_t> LocalBackend::ExpireCycle(size_t limit) {
  Result<Command> collected = [&] {
    std::shared_lock<std::shared_mutex> lock(engine_mu_);
    EngineView view(engine_);
    return machine_.CollectExpired(view, clock_->NowWallMillis(), limit, &expiry_resume_);
  }();
  if (!collected.ok()) return collected.status();
  if (collected->delete_expired().keys().empty()) return int64_t{0};
  std::promise<Result<CommandResult>> promise;
  std::future<Result<CommandResult>> future = promise.get_future();
  Execute(std::move(collected).value(), ReadMode::kLinearizable,
          [&promise](Result<CommandResult> r) { promise.set_value(std::move(r)); });
  Result<CommandResult> result = future.get();
  if (!result.ok()) return result.status();
  return result->integer();
}

}  // namespace micedb::kv
