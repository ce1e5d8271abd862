#include "tests/sim/kv_state_machine.h"

#include <gtest/gtest.h>

namespace micedb::sim {
namespace {

raft::Entry MakeEntry(uint64_t index, uint64_t term, const KvOp& op) {
  raft::Entry e;
  e.set_index(index);
  e.set_term(term);
  e.set_data(EncodeKvOp(op));
  return e;
}

TEST(KvStateMachineTest, OpsRoundTrip) {
  KvOp cas{KvOpKind::kCas, 7, "k1", "v7", ""};
  std::optional<KvOp> back = DecodeKvOp(EncodeKvOp(cas));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->kind, KvOpKind::kCas);
  EXPECT_EQ(back->id, 7u);
  EXPECT_EQ(back->key, "k1");
  EXPECT_EQ(back->expect, "");
  EXPECT_EQ(back->value, "v7");
  EXPECT_FALSE(DecodeKvOp("").has_value());
  EXPECT_FALSE(DecodeKvOp("put x k v").has_value());
}

TEST(KvStateMachineTest, PutAndCas) {
  KvStateMachine kv;
  kv.Apply(MakeEntry(1, 1, {KvOpKind::kPut, 1, "a", "v1", ""}));
  kv.Apply(MakeEntry(2, 1, {KvOpKind::kCas, 2, "a", "v2", "wrong"}));
  EXPECT_EQ(kv.Get("a"), "v1");
  kv.Apply(MakeEntry(3, 1, {KvOpKind::kCas, 3, "a", "v3", "v1"}));
  EXPECT_EQ(kv.Get("a"), "v3");
  kv.Apply(MakeEntry(4, 2, {KvOpKind::kCas, 4, "b", "v4", ""}));
  EXPECT_EQ(kv.Get("b"), "v4");
  EXPECT_EQ(kv.applied(), LogIndex(4));
}

TEST(KvStateMachineTest, SnapshotRestoresStateAndDigest) {
  KvStateMachine kv;
  kv.Apply(MakeEntry(1, 1, {KvOpKind::kPut, 1, "a", "v1", ""}));
  kv.Apply(MakeEntry(2, 1, {KvOpKind::kPut, 2, "b", "v2", ""}));
  raft::Snapshot snap;
  snap.set_data(kv.Serialize());
  snap.mutable_metadata()->set_index(2);
  KvStateMachine other;
  ASSERT_TRUE(other.Restore(snap).ok());
  EXPECT_EQ(other.digest(), kv.digest());
  EXPECT_EQ(other.applied(), LogIndex(2));
  EXPECT_EQ(other.Get("b"), "v2");
  snap.set_data("not a snapshot");
  EXPECT_TRUE(other.Restore(snap).IsCorruption());
}

}  // namespace
}  // namespace micedb::sim
