// Intents (ops_intents.cc): the raw keyspace's two-phase commit for writes across regions.
#include <gtest/gtest.h>

#include "kv/command_result.h"
#include "kv/machine_fixture.h"
#include "kv/state_machine.h"
#include "kv/value_format.h"
#include "storage/mem_engine.h"

namespace micedb::kv {
namespace {

constexpr int64_t kNow = MachineFixture::kFixtureNow;
constexpr uint64_t kTxn = 77;

Command Cmd(int64_t now_ms = kNow) {
  Command c;
  c.set_now_ms(now_ms);
  return c;
}

Command SetCmd(const std::string& key, const std::string& value) {
  Command c = Cmd();
  c.mutable_set()->set_key(key);
  c.mutable_set()->set_value(value);
  return c;
}

Command GetCmd(const std::string& key) {
  Command c = Cmd();
  c.mutable_get()->set_key(key);
  return c;
}

Command MSetCmd(std::vector<std::pair<std::string, std::string>> pairs) {
  Command c = Cmd();
  for (auto& [k, v] : pairs) {
    KeyValue* kv = c.mutable_mset()->add_pairs();
    kv->set_key(k);
    kv->set_value(v);
  }
  return c;
}

Command PrepareCmd(Command body, const std::string& primary, uint64_t txn = kTxn,
                   int64_t now_ms = kNow, int64_t ttl_ms = 3000) {
  Command c = Cmd(now_ms);
  c.mutable_prepare()->set_txn_id(txn);
  c.mutable_prepare()->set_primary(primary);
  c.mutable_prepare()->set_lock_expire_at_ms(now_ms + ttl_ms);
  *c.mutable_prepare()->mutable_body() = std::move(body);
  return c;
}

// With `others`, a decision is recorded for them.
Command ResolveCmd(std::vector<std::string> keys, bool commit, uint64_t txn = kTxn,
                   const std::string& primary = "", bool decide = false,
                   std::vector<std::string> others = {}) {
  Command c = Cmd();
  ResolveIntents* r = c.mutable_resolve_intents();
  r->set_txn_id(txn);
  for (auto& k : keys) r->add_keys(k);
  r->set_commit(commit);
  r->set_primary(primary);
  r->set_decide(decide);
  r->set_record(!others.empty());
  for (auto& k : others) r->add_others(k);
  return c;
}

Command CheckCmd(const std::string& primary, uint64_t txn = kTxn, int64_t now_ms = kNow) {
  Command c = Cmd(now_ms);
  c.mutable_check_intent()->set_txn_id(txn);
  c.mutable_check_intent()->set_primary(primary);
  return c;
}

class IntentsTest : public MachineFixture {
 protected:
  // The value as stored, ignoring intents (a Get would be refused while one is held).
  std::string Stored(const std::string& key) {
    EngineView view(&engine_);
    auto v = view.Get(storage::Cf::kDefault, EncodeRawKey(key));
    EXPECT_TRUE(v.ok());
    if (!v.ok() || !v->has_value()) return "<nil>";
    StoredValue sv;
    EXPECT_TRUE(DecodeValue(**v, &sv).ok());
    return std::string(sv.value);
  }

  bool HasLockRecord(const std::string& key) {
    EngineView view(&engine_);
    auto v = view.Get(storage::Cf::kLock, EncodeRawKey(key));
    return v.ok() && v->has_value();
  }

  static bool IsLocked(const CommandResult& r, const std::string& key) {
    return r.has_error() && r.error().code() == KvError::LOCKED && r.error().lock().key() == key &&
           r.error().lock().txn_id() == kTxn;
  }
};

TEST_F(IntentsTest, PrepareStagesWritesThatCommitMakesVisible) {
  Apply(SetCmd("a", "old"));
  CommandResult r = Apply(PrepareCmd(MSetCmd({{"a", "1"}, {"b", "2"}}), "a"));
  EXPECT_TRUE(r.has_ok()) << r.DebugString();
  // Nothing is written yet, and every reader and writer of the keys is held off.
  EXPECT_EQ(Stored("a"), "old");
  EXPECT_EQ(Stored("b"), "<nil>");
  EXPECT_TRUE(IsLocked(Read(GetCmd("a")), "a"));
  EXPECT_TRUE(IsLocked(Apply(SetCmd("b", "x")), "b"));
  EXPECT_EQ(Stored("b"), "<nil>");
  // A key the transaction does not name is free.
  EXPECT_TRUE(Apply(SetCmd("c", "3")).has_ok());

  EXPECT_TRUE(Apply(ResolveCmd({"a"}, true, kTxn, "a", true, {"b"})).has_ok());
  EXPECT_EQ(Read(GetCmd("a")).bulk(), "1");
  EXPECT_TRUE(IsLocked(Read(GetCmd("b")), "b"));  // b's commit is a step of its own
  EXPECT_EQ(Read(CheckCmd("a")).kind_case(), CommandResult::kError);  // a write: not a read
  // Committed, with the keys of its other intents, for whoever finishes it.
  CommandResult status = Apply(CheckCmd("a"));
  ASSERT_EQ(status.array().items_size(), 2) << status.DebugString();
  EXPECT_EQ(status.array().items(0).integer(), 1);
  EXPECT_EQ(status.array().items(1).bulk(), "b");
  EXPECT_TRUE(Apply(ResolveCmd({"b"}, true)).has_ok());
  EXPECT_EQ(Read(GetCmd("b")).bulk(), "2");
  // The commit stamped its own revision on the values (WATCH sees the change).
  Command rev = Cmd();
  rev.mutable_revisions()->add_keys("a");
  rev.mutable_revisions()->add_keys("b");
  CommandResult revs = Read(rev);
  EXPECT_EQ(revs.array().items(0).integer(), 5);  // the decide entry (the 5th applied)
  EXPECT_EQ(revs.array().items(1).integer(), 7);  // b's resolve (the 7th)
  // The commit record stays at the primary until forgotten.
  EXPECT_TRUE(HasLockRecord("a"));
  EXPECT_FALSE(HasLockRecord("b"));
  Command forget = Cmd();
  forget.mutable_forget_decision()->set_txn_id(kTxn);
  forget.mutable_forget_decision()->set_primary("a");
  EXPECT_TRUE(Apply(forget).has_ok());
  EXPECT_FALSE(HasLockRecord("a"));
  EXPECT_EQ(Apply(CheckCmd("a")).integer(), 0);
}

TEST_F(IntentsTest, RollbackRestoresNothingChangedAndFreesTheKeys) {
  Apply(SetCmd("a", "old"));
  Command del = Cmd();
  del.mutable_del()->add_keys("a");
  del.mutable_del()->add_keys("b");
  EXPECT_EQ(Apply(PrepareCmd(del, "a")).integer(), 1);
  EXPECT_EQ(Stored("a"), "old");
  EXPECT_TRUE(Apply(ResolveCmd({"a", "b"}, false)).has_ok());
  EXPECT_EQ(Read(GetCmd("a")).bulk(), "old");
  EXPECT_FALSE(HasLockRecord("a"));
  EXPECT_FALSE(HasLockRecord("b"));
  // A rolled-back transaction cannot commit any more.
  CommandResult lost = Apply(ResolveCmd({"a"}, true, kTxn, "a", true));
  ASSERT_TRUE(lost.has_error());
  EXPECT_EQ(lost.error().code(), KvError::INTENT_LOST);
  EXPECT_EQ(Read(GetCmd("a")).bulk(), "old");
}

TEST_F(IntentsTest, FlushAllWaitsForIntentsToBeResolved) {
  Apply(SetCmd("x", "1"));
  EXPECT_TRUE(Apply(PrepareCmd(MSetCmd({{"a", "1"}}), "a")).has_ok());
  Command flush = Cmd();
  flush.mutable_flushall();
  EXPECT_TRUE(IsLocked(Apply(flush), "a"));
  EXPECT_EQ(Stored("x"), "1");  // nothing flushed
  EXPECT_TRUE(Apply(ResolveCmd({"a"}, true, kTxn, "a", true)).has_ok());
  EXPECT_FALSE(HasLockRecord("a"));  // nothing elsewhere: no decision kept
  EXPECT_TRUE(Apply(flush).has_ok());
  EXPECT_EQ(Stored("a"), "<nil>");
  EXPECT_EQ(Stored("x"), "<nil>");
}

TEST_F(IntentsTest, DeleteCommitsAsADeletion) {
  Apply(SetCmd("a", "old"));
  Command del = Cmd();
  del.mutable_del()->add_keys("a");
  EXPECT_EQ(Apply(PrepareCmd(del, "a")).integer(), 1);
  EXPECT_TRUE(Apply(ResolveCmd({"a"}, true, kTxn, "a", true)).has_ok());
  EXPECT_TRUE(Read(GetCmd("a")).has_nil());
}

TEST_F(IntentsTest, APrepareMeetingAnotherTransactionsIntentWritesNothing) {
  EXPECT_TRUE(Apply(PrepareCmd(MSetCmd({{"a", "1"}}), "a")).has_ok());
  CommandResult r = Apply(PrepareCmd(MSetCmd({{"b", "2"}, {"a", "3"}}), "b", kTxn + 1));
  EXPECT_TRUE(IsLocked(r, "a")) << r.DebugString();
  EXPECT_FALSE(HasLockRecord("b"));
  // Its own intent does not stop a transaction (a prepare sent again).
  EXPECT_TRUE(Apply(PrepareCmd(MSetCmd({{"a", "4"}}), "a")).has_ok());
  EXPECT_TRUE(Apply(ResolveCmd({"a"}, true, kTxn, "a", true)).has_ok());
  EXPECT_EQ(Read(GetCmd("a")).bulk(), "4");
}

TEST_F(IntentsTest, CheckIntentRollsBackOnlyOnceTheLockExpired) {
  EXPECT_TRUE(Apply(PrepareCmd(MSetCmd({{"p", "1"}}), "p", kTxn, kNow, 1000)).has_ok());
  EXPECT_EQ(Apply(CheckCmd("p", kTxn, kNow + 999)).integer(), 2);  // pending
  EXPECT_TRUE(HasLockRecord("p"));
  EXPECT_EQ(Apply(CheckCmd("p", kTxn, kNow + 1000)).integer(), 0);  // expired: rolled back
  EXPECT_FALSE(HasLockRecord("p"));
  CommandResult lost = Apply(ResolveCmd({"p"}, true, kTxn, "p", true));
  EXPECT_EQ(lost.error().code(), KvError::INTENT_LOST);
  EXPECT_TRUE(Read(GetCmd("p")).has_nil());
  // Never prepared at all: rolled back as far as anyone can tell.
  EXPECT_EQ(Apply(CheckCmd("q", kTxn + 5)).integer(), 0);
}

TEST_F(IntentsTest, ALatePrepareIsRefused) {
  Command late = PrepareCmd(MSetCmd({{"a", "1"}}), "a", kTxn, kNow, 0);
  CommandResult r = Apply(late);
  EXPECT_EQ(r.error().code(), KvError::INTENT_LOST);
  EXPECT_FALSE(HasLockRecord("a"));
}

TEST_F(IntentsTest, AMultiPartRunsItsCommandsAndLocksWhatItReadsAndWatches) {
  Apply(SetCmd("n", "10"));
  Apply(SetCmd("w", "watched"));
  Command read_rev = Cmd();
  read_rev.mutable_revisions()->add_keys("w");
  const uint64_t w_rev = static_cast<uint64_t>(Read(read_rev).array().items(0).integer());
  Command body = Cmd();
  WatchedKey* watched = body.mutable_txn()->add_watched();
  watched->set_key("w");
  watched->set_revision(w_rev);
  Command incr = Cmd();
  incr.mutable_incrby()->set_key("n");
  incr.mutable_incrby()->set_delta(5);
  *body.mutable_txn()->add_commands() = incr;
  *body.mutable_txn()->add_commands() = GetCmd("n");
  *body.mutable_txn()->add_commands() = GetCmd("r");
  CommandResult r = Apply(PrepareCmd(body, "n"));
  ASSERT_TRUE(r.has_array()) << r.DebugString();
  EXPECT_EQ(r.array().items(0).integer(), 15);
  EXPECT_EQ(r.array().items(1).bulk(), "15");  // a later command sees the earlier one's write
  EXPECT_EQ(Stored("n"), "10");
  // The read key and the watched key are locked too, so the part stays what it read.
  EXPECT_TRUE(IsLocked(Apply(SetCmd("r", "x")), "r"));
  EXPECT_TRUE(IsLocked(Apply(SetCmd("w", "x")), "w"));
  EXPECT_TRUE(Apply(ResolveCmd({"n", "w", "r"}, true, kTxn, "n", true)).has_ok());
  EXPECT_EQ(Read(GetCmd("n")).bulk(), "15");
  EXPECT_EQ(Read(GetCmd("w")).bulk(), "watched");
  EXPECT_TRUE(Read(GetCmd("r")).has_nil());
  EXPECT_FALSE(HasLockRecord("r"));
}

TEST_F(IntentsTest, APartThatRunsNothingLeavesNoIntent) {
  Apply(SetCmd("a", "1"));
  Command nx = Cmd();
  KeyValue* kv = nx.mutable_msetnx()->add_pairs();
  kv->set_key("a");
  kv->set_value("2");
  EXPECT_EQ(Apply(PrepareCmd(nx, "a")).integer(), 0);
  EXPECT_FALSE(HasLockRecord("a"));
  Command body = Cmd();
  WatchedKey* watched = body.mutable_txn()->add_watched();
  watched->set_key("a");
  watched->set_revision(12345);  // not a's revision
  *body.mutable_txn()->add_commands() = SetCmd("a", "3");
  EXPECT_TRUE(Apply(PrepareCmd(body, "a")).has_aborted());
  EXPECT_FALSE(HasLockRecord("a"));
  EXPECT_EQ(Read(GetCmd("a")).bulk(), "1");
}

TEST_F(IntentsTest, MalformedIntentStepsAreRefused) {
  Command keyless = Cmd();
  keyless.mutable_flushall();
  EXPECT_EQ(Apply(PrepareCmd(keyless, "a")).error().code(), KvError::INVALID_ARGUMENT);
  Command nested = PrepareCmd(PrepareCmd(MSetCmd({{"a", "1"}}), "a"), "a");
  EXPECT_EQ(Apply(nested).error().code(), KvError::INVALID_ARGUMENT);
  Command with_flush = Cmd();
  *with_flush.mutable_txn()->add_commands() = SetCmd("a", "1");
  *with_flush.mutable_txn()->add_commands() = keyless;
  EXPECT_EQ(Apply(PrepareCmd(with_flush, "a")).error().code(), KvError::INVALID_ARGUMENT);
  EXPECT_EQ(Apply(PrepareCmd(MSetCmd({{"a", "1"}}), "a", 0)).error().code(),
            KvError::INVALID_ARGUMENT);
  EXPECT_EQ(Apply(ResolveCmd({"a"}, false, kTxn, "a", true)).error().code(),
            KvError::INVALID_ARGUMENT);
  EXPECT_FALSE(HasLockRecord("a"));
  EXPECT_TRUE(Read(GetCmd("a")).has_nil());
}

}  // namespace
}  // namespace micedb::kv
