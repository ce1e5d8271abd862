#include "kv/state_machine.h"

#include <gtest/gtest.h>

#include <limits>

#include "kv/command_result.h"
#include "kv/machine_fixture.h"
#include "kv/value_format.h"
#include "storage/mem_engine.h"

namespace micedb::kv {
namespace {

constexpr int64_t kNow = MachineFixture::kFixtureNow;

Command Cmd(int64_t now_ms = kNow) {
  Command c;
  c.set_now_ms(now_ms);
  return c;
}

Command SetCmd(std::string key, std::string value) {
  Command c = Cmd();
  c.mutable_set()->set_key(std::move(key));
  c.mutable_set()->set_value(std::move(value));
  return c;
}

Command GetCmd(std::string key) {
  Command c = Cmd();
  c.mutable_get()->set_key(std::move(key));
  return c;
}

Command IncrCmd(std::string key, int64_t delta) {
  Command c = Cmd();
  c.mutable_incrby()->set_key(std::move(key));
  c.mutable_incrby()->set_delta(delta);
  return c;
}

Command ExpireCmd(std::string key, int64_t at) {
  Command c = Cmd();
  c.mutable_expire_at()->set_key(std::move(key));
  c.mutable_expire_at()->set_expire_at_ms(at);
  return c;
}

Command TtlCmd(std::string key, bool millis) {
  Command c = Cmd();
  c.mutable_ttl()->set_key(std::move(key));
  c.mutable_ttl()->set_millis(millis);
  return c;
}

class StateMachineTest : public MachineFixture {
 protected:
  std::string Value(const std::string& key) {
    CommandResult r = Read(GetCmd(key));
    return r.has_bulk() ? r.bulk() : "<nil>";
  }
};

TEST_F(StateMachineTest, SetGetAndStoredFormat) {
  EXPECT_TRUE(Apply(SetCmd("a", "1")).has_ok());
  EXPECT_EQ(Value("a"), "1");
  EXPECT_TRUE(Read(GetCmd("missing")).has_nil());

  Result<std::string> raw = engine_.Get(storage::Cf::kDefault, "ra");
  ASSERT_TRUE(raw.ok());
  StoredValue stored;
  ASSERT_TRUE(DecodeValue(*raw, &stored).ok());
  EXPECT_EQ(stored.value, "1");
  EXPECT_EQ(stored.revision, 1u);
  EXPECT_EQ(stored.expire_at_ms, 0);
}

TEST_F(StateMachineTest, SetConditionsAndGetOption) {
  Command nx = SetCmd("k", "v1");
  nx.mutable_set()->set_condition(SET_IF_ABSENT);
  EXPECT_TRUE(Apply(nx).has_ok());
  nx.mutable_set()->set_value("v2");
  EXPECT_TRUE(Apply(nx).has_nil());
  EXPECT_EQ(Value("k"), "v1");

  Command xx = SetCmd("other", "x");
  xx.mutable_set()->set_condition(SET_IF_PRESENT);
  EXPECT_TRUE(Apply(xx).has_nil());
  EXPECT_EQ(Value("other"), "<nil>");
  xx.mutable_set()->set_key("k");
  EXPECT_TRUE(Apply(xx).has_ok());
  EXPECT_EQ(Value("k"), "x");

  // GET returns the old value whether or not the write happened.
  Command get = SetCmd("k", "y");
  get.mutable_set()->set_return_old(true);
  EXPECT_EQ(Apply(get).bulk(), "x");
  get.mutable_set()->set_key("fresh");
  EXPECT_TRUE(Apply(get).has_nil());
  Command nx_get = SetCmd("k", "z");
  nx_get.mutable_set()->set_condition(SET_IF_ABSENT);
  nx_get.mutable_set()->set_return_old(true);
  EXPECT_EQ(Apply(nx_get).bulk(), "y");
  EXPECT_EQ(Value("k"), "y");
}

TEST_F(StateMachineTest, SetExpiryKeepTtlAndPlainSetClearsTtl) {
  Command ex = SetCmd("k", "v");
  ex.mutable_set()->set_expire_at_ms(kNow + 10'000);
  Apply(ex);
  EXPECT_EQ(Read(TtlCmd("k", true)).integer(), 10'000);
  EXPECT_EQ(Read(TtlCmd("k", false)).integer(), 10);

  Command keep = SetCmd("k", "v2");
  keep.mutable_set()->set_keep_ttl(true);
  Apply(keep);
  EXPECT_EQ(Read(TtlCmd("k", true)).integer(), 10'000);
  EXPECT_EQ(Value("k"), "v2");

  Apply(SetCmd("k", "v3"));
  EXPECT_EQ(Read(TtlCmd("k", true)).integer(), -1);

  // An expiry already in the past leaves no key.
  Command past = SetCmd("gone", "v");
  past.mutable_set()->set_expire_at_ms(kNow - 1);
  EXPECT_TRUE(Apply(past).has_ok());
  EXPECT_EQ(Value("gone"), "<nil>");
  EXPECT_FALSE(engine_.Get(storage::Cf::kDefault, "rgone").ok());
}

// region_request_fuzz: a command timed before 1970 stored an expiry that no read could
// decode (every later read of the key stopped the node). Such a command is refused.
TEST_F(StateMachineTest, ACommandWithANegativeTimeIsRefusedAndStoresNothing) {
  Command c = SetCmd("k", "v");
  c.set_now_ms(-1000);
  c.mutable_set()->set_expire_at_ms(-10);
  CommandResult r = Apply(c);
  ASSERT_TRUE(r.has_error()) << r.DebugString();
  EXPECT_EQ(r.error().code(), KvError::INVALID_ARGUMENT);
  EXPECT_FALSE(engine_.Get(storage::Cf::kDefault, "rk").ok());
  EXPECT_EQ(Value("k"), "<nil>");
  // A past (negative) expiry at a sane time removes the key, as Redis does.
  Apply(SetCmd("k", "v"));
  Command past = ExpireCmd("k", -10);
  EXPECT_EQ(Apply(past).integer(), 1);
  EXPECT_EQ(Value("k"), "<nil>");
}

TEST_F(StateMachineTest, ExpiredKeysReadAsAbsent) {
  Command ex = SetCmd("k", "v");
  ex.mutable_set()->set_expire_at_ms(kNow + 1000);
  Apply(ex);
  EXPECT_EQ(Read(GetCmd("k"), kNow + 999).bulk(), "v");
  EXPECT_TRUE(Read(GetCmd("k"), kNow + 1000).has_nil());
  EXPECT_EQ(Read(TtlCmd("k", false), kNow + 1000).integer(), -2);

  // A write at a later now_ms treats it as absent too (NX succeeds, INCR starts at 0).
  Command nx = SetCmd("k", "new");
  nx.set_now_ms(kNow + 2000);
  nx.mutable_set()->set_condition(SET_IF_ABSENT);
  EXPECT_TRUE(Apply(nx).has_ok());
  EXPECT_EQ(Read(TtlCmd("k", false), kNow + 2000).integer(), -1);
}

TEST_F(StateMachineTest, IncrBy) {
  EXPECT_EQ(Apply(IncrCmd("n", 1)).integer(), 1);
  EXPECT_EQ(Apply(IncrCmd("n", 41)).integer(), 42);
  EXPECT_EQ(Apply(IncrCmd("n", -50)).integer(), -8);
  EXPECT_EQ(Value("n"), "-8");

  Apply(SetCmd("s", "abc"));
  EXPECT_EQ(Apply(IncrCmd("s", 1)).error().code(), KvError::NOT_INTEGER);
  Apply(SetCmd("s", "01"));
  EXPECT_EQ(Apply(IncrCmd("s", 1)).error().code(), KvError::NOT_INTEGER);
  Apply(SetCmd("s", " 1"));
  EXPECT_EQ(Apply(IncrCmd("s", 1)).error().code(), KvError::NOT_INTEGER);

  Apply(SetCmd("max", std::to_string(std::numeric_limits<int64_t>::max())));
  EXPECT_EQ(Apply(IncrCmd("max", 1)).error().code(), KvError::INTEGER_OVERFLOW);
  Apply(SetCmd("min", std::to_string(std::numeric_limits<int64_t>::min())));
  EXPECT_EQ(Apply(IncrCmd("min", -1)).error().code(), KvError::INTEGER_OVERFLOW);
  EXPECT_EQ(Apply(IncrCmd("min", 1)).integer(), std::numeric_limits<int64_t>::min() + 1);

  // INCR keeps the expiry.
  Command ex = SetCmd("t", "5");
  ex.mutable_set()->set_expire_at_ms(kNow + 5000);
  Apply(ex);
  EXPECT_EQ(Apply(IncrCmd("t", 1)).integer(), 6);
  EXPECT_EQ(Read(TtlCmd("t", true)).integer(), 5000);
}

TEST_F(StateMachineTest, AppendAndStrLen) {
  Command append = Cmd();
  append.mutable_append()->set_key("a");
  append.mutable_append()->set_value("Hello");
  EXPECT_EQ(Apply(append).integer(), 5);
  append.mutable_append()->set_value(" World");
  EXPECT_EQ(Apply(append).integer(), 11);
  EXPECT_EQ(Value("a"), "Hello World");
  Command strlen = Cmd();
  strlen.mutable_strlen()->set_key("a");
  EXPECT_EQ(Read(strlen).integer(), 11);
  strlen.mutable_strlen()->set_key("none");
  EXPECT_EQ(Read(strlen).integer(), 0);
}

TEST_F(StateMachineTest, ValueSizeLimit) {
  KvStateMachine small(KeyRange{}, StateMachineOptions{.max_value_bytes = 8});
  ApplyBatch batch(&engine_);
  Result<CommandResult> r = small.Apply(SetCmd("k", "123456789"), LogIndex(1), batch);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->error().code(), KvError::VALUE_TOO_BIG);
  Command append = Cmd();
  append.mutable_append()->set_key("k");
  append.mutable_append()->set_value("12345");
  r = small.Apply(append, LogIndex(2), batch);
  EXPECT_EQ(r->integer(), 5);
  r = small.Apply(append, LogIndex(3), batch);
  EXPECT_EQ(r->error().code(), KvError::VALUE_TOO_BIG);
}

TEST_F(StateMachineTest, GetRangeIndexes) {
  Apply(SetCmd("s", "This is a string"));
  auto range = [&](int64_t start, int64_t end) {
    Command c = Cmd();
    c.mutable_getrange()->set_key("s");
    c.mutable_getrange()->set_start(start);
    c.mutable_getrange()->set_end(end);
    return Read(c).bulk();
  };
  EXPECT_EQ(range(0, 3), "This");
  EXPECT_EQ(range(-3, -1), "ing");
  EXPECT_EQ(range(0, -1), "This is a string");
  EXPECT_EQ(range(10, 100), "string");
  EXPECT_EQ(range(5, 3), "");
  EXPECT_EQ(range(-1, -5), "");
  EXPECT_EQ(range(0, -100), "T");  // Redis: end clamps to 0
  EXPECT_EQ(range(-100, 2), "Thi");
  EXPECT_EQ(range(100, 200), "");
  Command missing = Cmd();
  missing.mutable_getrange()->set_key("none");
  EXPECT_EQ(Read(missing).bulk(), "");
}

TEST_F(StateMachineTest, MSetMGetMSetNxExistsDel) {
  Command mset = Cmd();
  for (auto [k, v] : {std::pair{"a", "1"}, {"b", "2"}, {"a", "3"}}) {
    KeyValue* kv = mset.mutable_mset()->add_pairs();
    kv->set_key(k);
    kv->set_value(v);
  }
  EXPECT_TRUE(Apply(mset).has_ok());
  Command mget = Cmd();
  for (auto k : {"a", "b", "c"}) mget.mutable_mget()->add_keys(k);
  CommandResult got = Read(mget);
  ASSERT_EQ(got.array().items_size(), 3);
  EXPECT_EQ(got.array().items(0).bulk(), "3");  // the later pair wins
  EXPECT_EQ(got.array().items(1).bulk(), "2");
  EXPECT_TRUE(got.array().items(2).has_nil());

  Command msetnx = Cmd();
  for (auto [k, v] : {std::pair{"c", "x"}, {"a", "y"}}) {
    KeyValue* kv = msetnx.mutable_msetnx()->add_pairs();
    kv->set_key(k);
    kv->set_value(v);
  }
  EXPECT_EQ(Apply(msetnx).integer(), 0);
  EXPECT_EQ(Value("c"), "<nil>");
  msetnx.mutable_msetnx()->mutable_pairs(1)->set_key("d");
  EXPECT_EQ(Apply(msetnx).integer(), 1);
  EXPECT_EQ(Value("c"), "x");

  Command exists = Cmd();
  for (auto k : {"a", "a", "zz", "d"}) exists.mutable_exists()->add_keys(k);
  EXPECT_EQ(Read(exists).integer(), 3);

  Command del = Cmd();
  for (auto k : {"a", "a", "zz", "b"}) del.mutable_del()->add_keys(k);
  EXPECT_EQ(Apply(del).integer(), 2);
  EXPECT_EQ(Value("a"), "<nil>");
}

TEST_F(StateMachineTest, TtlSaturatesForAClockFarInThePast) {
  // Found by fuzz/region_request_fuzz: the remaining time overflowed int64.
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  Apply(SetCmd("k", "v"));
  EXPECT_EQ(Apply(ExpireCmd("k", kMax)).integer(), 1);
  EXPECT_EQ(Read(TtlCmd("k", true), std::numeric_limits<int64_t>::min()).integer(), kMax);
  EXPECT_EQ(Read(TtlCmd("k", false), -1000).integer(), kMax / 1000 + 1);
  EXPECT_EQ(Read(TtlCmd("k", true), kMax - 1).integer(), 1);
  EXPECT_EQ(Read(TtlCmd("k", false), kMax - 1500).integer(), 2);
}

TEST_F(StateMachineTest, ExpireTtlPersist) {
  Apply(SetCmd("k", "v"));
  EXPECT_EQ(Read(TtlCmd("k", false)).integer(), -1);
  EXPECT_EQ(Read(TtlCmd("none", false)).integer(), -2);
  EXPECT_EQ(Apply(ExpireCmd("none", kNow + 1000)).integer(), 0);

  EXPECT_EQ(Apply(ExpireCmd("k", kNow + 1499)).integer(), 1);
  EXPECT_EQ(Read(TtlCmd("k", false)).integer(), 1);  // rounded to nearest second
  EXPECT_EQ(Read(TtlCmd("k", true)).integer(), 1499);

  Command persist = Cmd();
  persist.mutable_persist()->set_key("k");
  EXPECT_EQ(Apply(persist).integer(), 1);
  EXPECT_EQ(Apply(persist).integer(), 0);
  EXPECT_EQ(Read(TtlCmd("k", false)).integer(), -1);

  // A time not after now deletes the key.
  EXPECT_EQ(Apply(ExpireCmd("k", kNow)).integer(), 1);
  EXPECT_EQ(Value("k"), "<nil>");
}

TEST_F(StateMachineTest, ExpireConditions) {
  Apply(SetCmd("k", "v"));
  auto expire = [&](int64_t at, bool nx, bool xx, bool gt, bool lt) {
    Command c = ExpireCmd("k", at);
    c.mutable_expire_at()->set_nx(nx);
    c.mutable_expire_at()->set_xx(xx);
    c.mutable_expire_at()->set_gt(gt);
    c.mutable_expire_at()->set_lt(lt);
    return Apply(c).integer();
  };
  EXPECT_EQ(expire(kNow + 100'000, false, true, false, false), 0);  // XX: no ttl yet
  EXPECT_EQ(expire(kNow + 100'000, false, false, true, false), 0);  // GT: none is infinite
  EXPECT_EQ(expire(kNow + 100'000, true, false, false, false), 1);  // NX: set
  EXPECT_EQ(expire(kNow + 200'000, true, false, false, false), 0);  // NX: has ttl now
  EXPECT_EQ(expire(kNow + 50'000, false, false, true, false), 0);   // GT: not later
  EXPECT_EQ(expire(kNow + 200'000, false, false, true, false), 1);  // GT: later
  EXPECT_EQ(expire(kNow + 300'000, false, false, false, true), 0);  // LT: not earlier
  EXPECT_EQ(expire(kNow + 150'000, false, true, false, true), 1);   // XX + LT
  EXPECT_EQ(Read(TtlCmd("k", true)).integer(), 150'000);
}

TEST_F(StateMachineTest, TypeAndDbSize) {
  Apply(SetCmd("a", "1"));
  Command expiring = SetCmd("b", "2");
  expiring.mutable_set()->set_expire_at_ms(kNow + 1000);
  Apply(expiring);
  Command type = Cmd();
  type.mutable_type()->set_key("a");
  EXPECT_EQ(Read(type).status(), "string");
  type.mutable_type()->set_key("none");
  EXPECT_EQ(Read(type).status(), "none");

  Command dbsize = Cmd();
  dbsize.mutable_dbsize();
  EXPECT_EQ(Read(dbsize).integer(), 2);
  EXPECT_EQ(Read(dbsize, kNow + 1000).integer(), 1);
  dbsize.mutable_dbsize()->set_count_expires(true);
  CommandResult counts = Read(dbsize);
  EXPECT_EQ(counts.array().items(0).integer(), 2);
  EXPECT_EQ(counts.array().items(1).integer(), 1);
}

TEST_F(StateMachineTest, CompareAndSwap) {
  auto cas = [&](std::optional<std::string> expected, std::string next, bool del = false) {
    Command c = Cmd();
    CompareAndSwap* op = c.mutable_compare_and_swap();
    op->set_key("k");
    if (expected.has_value()) {
      op->set_expected_value(*expected);
    } else {
      op->set_expect_absent(true);
    }
    op->set_new_value(std::move(next));
    op->set_delete_key(del);
    return Apply(c);
  };
  CommandResult r = cas(std::nullopt, "v1");
  EXPECT_EQ(r.array().items(0).integer(), 1);
  EXPECT_TRUE(r.array().items(1).has_nil());
  r = cas(std::nullopt, "v2");
  EXPECT_EQ(r.array().items(0).integer(), 0);
  EXPECT_EQ(r.array().items(1).bulk(), "v1");
  r = cas("wrong", "v2");
  EXPECT_EQ(r.array().items(0).integer(), 0);
  r = cas("v1", "v2");
  EXPECT_EQ(r.array().items(0).integer(), 1);
  EXPECT_EQ(Value("k"), "v2");
  r = cas("v2", "", /*del=*/true);
  EXPECT_EQ(r.array().items(0).integer(), 1);
  EXPECT_EQ(Value("k"), "<nil>");
  Command none = Cmd();
  none.mutable_compare_and_swap()->set_key("k");
  EXPECT_EQ(Apply(none).error().code(), KvError::INVALID_ARGUMENT);
}

TEST_F(StateMachineTest, TxnRunsAllCommandsAndWatchAborts) {
  Apply(SetCmd("w", "1"));  // revision 1
  Command revisions = Cmd();
  revisions.mutable_revisions()->add_keys("w");
  revisions.mutable_revisions()->add_keys("absent");
  CommandResult revs = Read(revisions);
  EXPECT_EQ(revs.array().items(0).integer(), 1);
  EXPECT_EQ(revs.array().items(1).integer(), 0);

  Command txn = Cmd();
  WatchedKey* watched = txn.mutable_txn()->add_watched();
  watched->set_key("w");
  watched->set_revision(1);
  *txn.mutable_txn()->add_commands() = SetCmd("x", "abc");
  *txn.mutable_txn()->add_commands() = IncrCmd("x", 1);  // fails, the others still run
  *txn.mutable_txn()->add_commands() = GetCmd("x");
  *txn.mutable_txn()->add_commands() = IncrCmd("w", 1);
  CommandResult r = Apply(txn);  // revision 2
  ASSERT_EQ(r.array().items_size(), 4);
  EXPECT_TRUE(r.array().items(0).has_ok());
  EXPECT_EQ(r.array().items(1).error().code(), KvError::NOT_INTEGER);
  EXPECT_EQ(r.array().items(2).bulk(), "abc");
  EXPECT_EQ(r.array().items(3).integer(), 2);
  EXPECT_EQ(Read(revisions).array().items(0).integer(), 2);

  // Same watch again: "w" changed (revision 2), so nothing runs.
  *txn.mutable_txn()->mutable_commands(0) = SetCmd("x", "never");
  EXPECT_TRUE(Apply(txn).has_aborted());
  EXPECT_EQ(Value("x"), "abc");

  // A watched key that was absent and still is: runs.
  Command absent = Cmd();
  WatchedKey* w2 = absent.mutable_txn()->add_watched();
  w2->set_key("absent");
  w2->set_revision(0);
  *absent.mutable_txn()->add_commands() = SetCmd("y", "1");
  EXPECT_EQ(Apply(absent).array().items_size(), 1);
  EXPECT_EQ(Value("y"), "1");

  // A read-only txn may go through Read.
  Command reads = Cmd();
  *reads.mutable_txn()->add_commands() = GetCmd("y");
  EXPECT_FALSE(IsWriteCommand(reads));
  EXPECT_EQ(Read(reads).array().items(0).bulk(), "1");
  EXPECT_TRUE(IsWriteCommand(txn));
  EXPECT_EQ(Read(txn).error().code(), KvError::WRITE_ON_READ_PATH);
}

// Refusals carry a code for front ends to word, and a message in plain words (no Redis text).
TEST_F(StateMachineTest, RefusalsAreTypedErrors) {
  const CommandResult empty = Apply(Cmd());
  EXPECT_EQ(empty.error().code(), KvError::EMPTY_COMMAND);
  EXPECT_EQ(empty.error().message(), "command has no operation");

  Command outer = Cmd();
  *outer.mutable_txn()->add_commands() = SetCmd("a", "1");
  Command inner = Cmd();
  *inner.mutable_txn()->add_commands() = SetCmd("b", "1");
  *outer.mutable_txn()->add_commands() = inner;
  const CommandResult r = Apply(outer);
  ASSERT_EQ(r.array().items_size(), 2);
  EXPECT_TRUE(r.array().items(0).has_ok());
  EXPECT_EQ(r.array().items(1).error().code(), KvError::NESTED_TXN);
  EXPECT_EQ(Value("a"), "1");
  EXPECT_EQ(Value("b"), "<nil>");

  KvStateMachine small(KeyRange{}, StateMachineOptions{.max_value_bytes = 8});
  ApplyBatch batch(&engine_);
  Result<CommandResult> big = small.Apply(SetCmd("k", "123456789"), LogIndex(1), batch);
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->error().message(), "value would exceed the limit of 8 bytes");
  Apply(SetCmd("s", "x"));
  EXPECT_EQ(Apply(IncrCmd("s", 1)).error().message(), "value is not an integer or out of range");
}

TEST_F(StateMachineTest, SeveralCommandsInOneRoundSeeEachOther) {
  Apply(SetCmd("pre", "existing"));
  ApplyBatch batch(&engine_);
  auto apply = [&](const Command& c) { return *machine_.Apply(c, ++index_, batch); };
  EXPECT_TRUE(apply(SetCmd("a", "1")).has_ok());
  EXPECT_EQ(apply(IncrCmd("a", 5)).integer(), 6);
  EXPECT_EQ(apply(GetCmd("a")).bulk(), "6");
  Command del = Cmd();
  del.mutable_del()->add_keys("pre");
  EXPECT_EQ(apply(del).integer(), 1);
  EXPECT_TRUE(apply(GetCmd("pre")).has_nil());
  Command scan = Cmd();
  scan.mutable_scan();
  CommandResult keys = apply(scan);
  ASSERT_EQ(keys.array().items(1).array().items_size(), 1);
  EXPECT_EQ(keys.array().items(1).array().items(0).bulk(), "a");
  Command flush = Cmd();
  flush.mutable_flushall();
  apply(flush);
  EXPECT_TRUE(apply(GetCmd("a")).has_nil());
  apply(SetCmd("after", "x"));
  EXPECT_EQ(apply(scan).array().items(1).array().items_size(), 1);
  // Nothing reached the engine yet.
  EXPECT_EQ(Value("pre"), "existing");
  ASSERT_TRUE(engine_.Write(batch.write_batch(), {}).ok());
  EXPECT_EQ(Value("pre"), "<nil>");
  EXPECT_EQ(Value("a"), "<nil>");
  EXPECT_EQ(Value("after"), "x");
}

TEST_F(StateMachineTest, ScanPagesMatchesAndTypes) {
  for (int i = 0; i < 25; ++i) Apply(SetCmd("key:" + std::to_string(100 + i), "v"));
  Apply(SetCmd("other", "v"));
  Command expired = SetCmd("key:999", "v");
  expired.mutable_set()->set_expire_at_ms(kNow + 1);
  Apply(expired);

  std::vector<std::string> seen;
  std::string start;
  for (int page = 0; page < 20; ++page) {
    Command scan = Cmd();
    scan.mutable_scan()->set_start(start);
    scan.mutable_scan()->set_limit(10);
    scan.mutable_scan()->set_match("key:*");
    CommandResult r = Read(scan, kNow + 10);
    for (const CommandResult& k : r.array().items(1).array().items()) seen.push_back(k.bulk());
    if (r.array().items(0).has_nil()) break;
    start = r.array().items(0).bulk();
  }
  EXPECT_EQ(seen.size(), 25u);
  EXPECT_EQ(seen.front(), "key:100");

  Command typed = Cmd();
  typed.mutable_scan()->set_type("hash");
  EXPECT_EQ(Read(typed).array().items(1).array().items_size(), 0);
  typed.mutable_scan()->set_type("string");
  typed.mutable_scan()->set_with_values(true);
  CommandResult all = Read(typed);
  EXPECT_EQ(all.array().items(1).array().items_size(), 2 * 27);
}

TEST_F(StateMachineTest, RegionRangeLimitsScanDbSizeAndFlush) {
  for (auto k : {"a", "b", "c", "d", "e"}) Apply(SetCmd(k, "v"));
  KvStateMachine region(KeyRange{"b", "d"});
  Command dbsize = Cmd();
  dbsize.mutable_dbsize();
  EXPECT_EQ(region.Read(dbsize, &engine_, nullptr, kNow)->integer(), 2);
  Command scan = Cmd();
  scan.mutable_scan()->set_start("a");
  scan.mutable_scan()->set_end("z");
  CommandResult keys = *region.Read(scan, &engine_, nullptr, kNow);
  ASSERT_EQ(keys.array().items(1).array().items_size(), 2);
  EXPECT_EQ(keys.array().items(1).array().items(0).bulk(), "b");
  EXPECT_EQ(keys.array().items(1).array().items(1).bulk(), "c");

  ApplyBatch batch(&engine_);
  Command flush = Cmd();
  flush.mutable_flushall();
  ASSERT_TRUE(region.Apply(flush, LogIndex(100), batch).ok());
  ASSERT_TRUE(engine_.Write(batch.write_batch(), {}).ok());
  EXPECT_EQ(Read(dbsize).integer(), 3);
  EXPECT_EQ(Value("a"), "v");
  EXPECT_EQ(Value("b"), "<nil>");
  EXPECT_EQ(Value("d"), "v");
}

TEST_F(StateMachineTest, DeleteExpiredOnlyRemovesWhatIsStillDue) {
  Command a = SetCmd("a", "1");
  a.mutable_set()->set_expire_at_ms(kNow + 10);
  Apply(a);
  Command b = SetCmd("b", "1");
  b.mutable_set()->set_expire_at_ms(kNow + 10);
  Apply(b);
  Apply(SetCmd("c", "1"));

  EngineView view(&engine_);
  std::string resume;
  Result<Command> collected = machine_.CollectExpired(view, kNow + 20, 10, &resume);
  ASSERT_TRUE(collected.ok());
  ASSERT_EQ(collected->delete_expired().keys_size(), 2);
  EXPECT_TRUE(resume.empty());

  // Meanwhile "b" got a new expiry: it must survive.
  Command renew = ExpireCmd("b", kNow + 100'000);
  Apply(renew);
  EXPECT_EQ(Apply(*collected).integer(), 1);
  EXPECT_FALSE(engine_.Get(storage::Cf::kDefault, "ra").ok());
  EXPECT_TRUE(engine_.Get(storage::Cf::kDefault, "rb").ok());
}

TEST_F(StateMachineTest, CollectExpiredWalksInSteps) {
  for (int i = 0; i < 10; ++i) {
    Command c = SetCmd("k" + std::to_string(i), "v");
    c.mutable_set()->set_expire_at_ms(kNow + 1);
    Apply(c);
  }
  EngineView view(&engine_);
  std::string resume;
  Result<Command> first = machine_.CollectExpired(view, kNow + 5, 4, &resume);
  EXPECT_EQ(first->delete_expired().keys_size(), 4);
  EXPECT_EQ(resume, "k4");
  Result<Command> second = machine_.CollectExpired(view, kNow + 5, 4, &resume);
  EXPECT_EQ(second->delete_expired().keys(0).key(), "k4");
}

TEST_F(StateMachineTest, CorruptValueIsAStatusNotAResult) {
  ASSERT_TRUE(engine_.Put(storage::Cf::kDefault, "rbad", "\x07garbage").ok());
  Result<CommandResult> r = machine_.Read(GetCmd("bad"), &engine_, nullptr, kNow);
  EXPECT_TRUE(r.status().IsCorruption());
}

// ---- Reply limits and what retries keep (issue 13, item 1) ----

Command MGetCmd(std::initializer_list<std::string> keys) {
  Command c = Cmd();
  for (const auto& k : keys) c.mutable_mget()->add_keys(k);
  return c;
}

TEST(ReplyLimitTest, ReadsPastTheBudgetAreRefusedAlonePipelinedOrInATxn) {
  storage::MemEngine engine;
  KvStateMachine sm({}, StateMachineOptions{.max_result_bytes = 250});
  ApplyBatch setup(&engine);
  ASSERT_TRUE(sm.Apply(SetCmd("a", std::string(100, 'a')), LogIndex(1), setup).ok());
  ASSERT_TRUE(sm.Apply(SetCmd("b", std::string(200, 'b')), LogIndex(2), setup).ok());
  ASSERT_TRUE(engine.Write(setup.write_batch(), {}).ok());

  auto read = [&](const Command& c) { return *sm.Read(c, &engine, nullptr, kNow); };
  EXPECT_EQ(read(GetCmd("b")).bulk().size(), 200u);
  CommandResult both = read(MGetCmd({"a", "b"}));
  ASSERT_TRUE(both.has_error());
  EXPECT_EQ(both.error().code(), KvError::RESULT_TOO_LARGE);
  EXPECT_NE(both.error().message().find("250 bytes"), std::string::npos);

  // In a txn the budget is shared by the reads; the write still runs and answers.
  Command txn = Cmd();
  *txn.mutable_txn()->add_commands() = GetCmd("a");
  *txn.mutable_txn()->add_commands() = GetCmd("a");
  *txn.mutable_txn()->add_commands() = GetCmd("a");
  *txn.mutable_txn()->add_commands() = SetCmd("c", "1");
  ApplyBatch batch(&engine);
  CommandResult r = *sm.Apply(txn, LogIndex(3), batch);
  ASSERT_EQ(r.array().items_size(), 4);
  EXPECT_EQ(r.array().items(0).bulk().size(), 100u);
  EXPECT_EQ(r.array().items(1).bulk().size(), 100u);
  EXPECT_EQ(r.array().items(2).error().code(), KvError::RESULT_TOO_LARGE);
  EXPECT_TRUE(r.array().items(3).has_ok());
}

TEST(ReplyLimitTest, ATxnsWriteResultsPastTheBudgetAreDroppedButTheWritesApply) {
  storage::MemEngine engine;
  KvStateMachine sm({}, StateMachineOptions{.max_result_bytes = 250});
  // SET ... GET answers the old value: three of them would carry 3 x 120 bytes.
  Command txn = Cmd();
  for (int i = 0; i < 3; ++i) {
    Command set = SetCmd("k" + std::to_string(i), "new");
    set.mutable_set()->set_return_old(true);
    *txn.mutable_txn()->add_commands() = set;
  }
  ApplyBatch setup(&engine);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(
        sm.Apply(SetCmd("k" + std::to_string(i), std::string(120, 'o')), LogIndex(1), setup).ok());
  }
  ASSERT_TRUE(engine.Write(setup.write_batch(), {}).ok());
  ApplyBatch batch(&engine);
  CommandResult r = *sm.Apply(txn, LogIndex(2), batch, TxnReads::kSkip);
  ASSERT_TRUE(engine.Write(batch.write_batch(), {}).ok());
  ASSERT_EQ(r.array().items_size(), 3);
  EXPECT_EQ(r.array().items(0).bulk().size(), 120u);
  EXPECT_EQ(r.array().items(1).bulk().size(), 120u);
  EXPECT_EQ(r.array().items(2).error().code(), KvError::RESULT_TOO_LARGE);
  EXPECT_NE(r.array().items(2).error().message().find("the command ran"), std::string::npos);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(sm.Read(GetCmd("k" + std::to_string(i)), &engine, nullptr, kNow)->bulk(), "new");
  }
}

TEST(ReplyLimitTest, ReplicasThatDoNotAnswerSkipTxnReadsAndKeepTheSameRetryRecord) {
  storage::MemEngine engine;
  KvStateMachine sm;
  ApplyBatch setup(&engine);
  ASSERT_TRUE(sm.Apply(SetCmd("big", std::string(10000, 'x')), LogIndex(1), setup).ok());
  ASSERT_TRUE(engine.Write(setup.write_batch(), {}).ok());
  Command txn = Cmd();
  *txn.mutable_txn()->add_commands() = GetCmd("big");
  *txn.mutable_txn()->add_commands() = SetCmd("x", "1");
  *txn.mutable_txn()->add_commands() = IncrCmd("n", 5);

  ApplyBatch answering(&engine);
  CommandResult full = *sm.Apply(txn, LogIndex(2), answering, TxnReads::kCompute);
  ApplyBatch other(&engine);
  CommandResult skipped = *sm.Apply(txn, LogIndex(2), other, TxnReads::kSkip);
  EXPECT_EQ(full.array().items(0).bulk().size(), 10000u);
  EXPECT_EQ(skipped.array().items(0).error().code(), KvError::RESULT_NOT_KEPT);
  // The same writes either way.
  ASSERT_EQ(answering.write_batch().Count(), other.write_batch().Count());
  for (size_t i = 0; i < answering.write_batch().Count(); ++i) {
    EXPECT_EQ(answering.write_batch().ops()[i].key, other.write_batch().ops()[i].key);
    EXPECT_EQ(answering.write_batch().ops()[i].value, other.write_batch().ops()[i].value);
  }
  // The retry record is the same, small, and keeps the writes' results.
  CommandResult a = KvStateMachine::ForRetry(txn, full);
  CommandResult b = KvStateMachine::ForRetry(txn, skipped);
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString());
  EXPECT_LT(a.ByteSizeLong(), 300u);
  EXPECT_EQ(a.array().items(0).error().code(), KvError::RESULT_NOT_KEPT);
  EXPECT_TRUE(a.array().items(1).has_ok());
  EXPECT_EQ(a.array().items(2).integer(), 5);

  // A plain write's large result (SET ... GET of a big value) is not kept either.
  Command getset = SetCmd("big", "small");
  getset.mutable_set()->set_return_old(true);
  CommandResult old = BulkResult(std::string(10000, 'x'));
  EXPECT_EQ(KvStateMachine::ForRetry(getset, old).error().code(), KvError::RESULT_NOT_KEPT);
  EXPECT_EQ(KvStateMachine::ForRetry(getset, BulkResult("x")).bulk(), "x");
}

TEST(ValueFormatTest, RoundTripAndRejects) {
  const std::string encoded = EncodeValue(ValueType::kString, 123456789, 42, "payload");
  StoredValue v;
  ASSERT_TRUE(DecodeValue(encoded, &v).ok());
  EXPECT_EQ(v.expire_at_ms, 123456789);
  EXPECT_EQ(v.revision, 42u);
  EXPECT_EQ(v.value, "payload");
  EXPECT_FALSE(DecodeValue("", &v).ok());
  EXPECT_FALSE(DecodeValue(std::string("\x02\x00\x00\x00", 4), &v).ok());
  EXPECT_FALSE(DecodeValue(std::string("\x01\x10\x00\x00", 4), &v).ok());
  EXPECT_FALSE(DecodeValue(std::string("\x01\x00\x80", 3), &v).ok());
  EXPECT_EQ(EncodeRawKey("k"), "rk");
  EXPECT_EQ(RawKeyRangeEnd(""), "s");
}

}  // namespace
}  // namespace micedb::kv
