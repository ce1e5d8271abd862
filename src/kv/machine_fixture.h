// Test support: a KvStateMachine over an in-memory engine, each command applied in a round of
// its own and committed (state_machine_test.cc, intents_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>

#include "kv/command_result.h"
#include "kv/state_machine.h"
#include "storage/mem_engine.h"

namespace micedb::kv {

class MachineFixture : public testing::Test {
 public:
  // The wall clock reads are served at, unless a test says otherwise.
  static constexpr int64_t kFixtureNow = 1'700'000'000'000;

 protected:
  // Applies one command in its own round and commits it.
  CommandResult Apply(const Command& cmd) {
    ApplyBatch batch(&engine_);
    Result<CommandResult> r = machine_.Apply(cmd, ++index_, batch);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(engine_.Write(batch.write_batch(), {}).ok());
    return r.ok() ? *r : CommandResult();
  }

  CommandResult Read(const Command& cmd, int64_t now_ms = kFixtureNow) {
    Result<CommandResult> r = machine_.Read(cmd, &engine_, nullptr, now_ms);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : CommandResult();
  }

  storage::MemEngine engine_;
  KvStateMachine machine_;
  LogIndex index_{0};
};

}  // namespace micedb::kv
