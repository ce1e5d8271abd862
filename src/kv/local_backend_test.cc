#include "kv/local_backend.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>
#include <vector>

#include "storage/fault_engine.h"
#include "storage/mem_engine.h"

namespace micedb::kv {
namespace {

Result<CommandResult> ExecuteAndWait(KvBackend& backend, Command cmd) {
  std::promise<Result<CommandResult>> promise;
  auto future = promise.get_future();
  backend.Execute(std::move(cmd), ReadMode::kLinearizable,
                  [&promise](Result<CommandResult> r) { promise.set_value(std::move(r)); });
  return future.get();
}

Command Incr(const std::string& key) {
  Command c;
  c.mutable_incrby()->set_key(key);
  c.mutable_incrby()->set_delta(1);
  return c;
}

Command Revision(const std::string& key) {
  Command c;
  c.mutable_revisions()->add_keys(key);
  return c;
}

TEST(LocalBackendTest, ConcurrentWritersAreAllAppliedInOrderOfIndex) {
  storage::MemEngine engine;
  ManualClock clock;
  auto backend = std::move(LocalBackend::Open(&engine, &clock)).value();
  constexpr int kThreads = 8;
  constexpr int kWrites = 200;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kWrites; ++i) ASSERT_TRUE(ExecuteAndWait(*backend, Incr("n")).ok());
    });
  }
  for (auto& t : threads) t.join();
  Command get;
  get.mutable_get()->set_key("n");
  EXPECT_EQ(ExecuteAndWait(*backend, get)->bulk(), std::to_string(kThreads * kWrites));
  EXPECT_EQ(backend->applied_index(), LogIndex(uint64_t{kThreads} * kWrites));
  EXPECT_EQ(ExecuteAndWait(*backend, Revision("n"))->array().items(0).integer(),
            kThreads * kWrites);
}

TEST(LocalBackendTest, AppliedIndexSurvivesReopen) {
  storage::MemEngine engine;
  ManualClock clock;
  {
    auto backend = std::move(LocalBackend::Open(&engine, &clock)).value();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(ExecuteAndWait(*backend, Incr("a")).ok());
  }
  auto backend = std::move(LocalBackend::Open(&engine, &clock)).value();
  EXPECT_EQ(backend->applied_index(), LogIndex(5));
  ASSERT_TRUE(ExecuteAndWait(*backend, Incr("b")).ok());
  EXPECT_EQ(ExecuteAndWait(*backend, Revision("b"))->array().items(0).integer(), 6);
}

TEST(LocalBackendTest, FailedEngineWriteFailsTheWriteAndChangesNothing) {
  storage::FaultEngine engine;
  ManualClock clock;
  auto backend = std::move(LocalBackend::Open(&engine, &clock)).value();
  ASSERT_TRUE(ExecuteAndWait(*backend, Incr("a")).ok());
  engine.FailNextWrites(1);
  Result<CommandResult> failed = ExecuteAndWait(*backend, Incr("a"));
  EXPECT_EQ(failed.status().code(), StatusCode::kIoError);
  EXPECT_EQ(backend->applied_index(), LogIndex(1));
  EXPECT_EQ(ExecuteAndWait(*backend, Incr("a"))->integer(), 2);
}

TEST(LocalBackendTest, ExpireCycleDeletesDueKeys) {
  storage::MemEngine engine;
  ManualClock clock;
  auto backend = std::move(LocalBackend::Open(&engine, &clock)).value();
  for (int i = 0; i < 3; ++i) {
    Command set;
    set.mutable_set()->set_key("k" + std::to_string(i));
    set.mutable_set()->set_value("v");
    set.mutable_set()->set_expire_at_ms(clock.NowWallMillis() + 1000);
    ASSERT_TRUE(ExecuteAndWait(*backend, set).ok());
  }
  EXPECT_EQ(backend->ExpireCycle(10).value_or(-1), 0);
  clock.Advance(std::chrono::seconds(2));
  EXPECT_EQ(backend->ExpireCycle(10).value_or(-1), 3);
  EXPECT_FALSE(engine.Get(storage::Cf::kDefault, "rk0").ok());
}

}  // namespace
}  // namespace micedb::kv
