#include "storage/write_batch.h"

#include <gtest/gtest.h>

namespace micedb::storage {
namespace {

TEST(WriteBatchTest, RecordsOpsInOrder) {
  WriteBatch batch;
  EXPECT_TRUE(batch.empty());
  batch.Put(Cf::kDefault, "a", "1");
  batch.Delete(Cf::kRaft, "b");
  batch.DeleteRange(Cf::kLock, "c", "d");
  ASSERT_EQ(batch.Count(), 3u);
  EXPECT_EQ(batch.ApproximateBytes(), 2u + 1u + 2u);
  const auto& ops = batch.ops();
  EXPECT_EQ(ops[0].type, WriteBatch::OpType::kPut);
  EXPECT_EQ(ops[0].cf, Cf::kDefault);
  EXPECT_EQ(ops[0].key, "a");
  EXPECT_EQ(ops[0].value, "1");
  EXPECT_EQ(ops[1].type, WriteBatch::OpType::kDelete);
  EXPECT_EQ(ops[1].cf, Cf::kRaft);
  EXPECT_EQ(ops[2].type, WriteBatch::OpType::kDeleteRange);
  EXPECT_EQ(ops[2].key, "c");
  EXPECT_EQ(ops[2].value, "d");
  EXPECT_TRUE(batch.Validate().ok());

  batch.Clear();
  EXPECT_TRUE(batch.empty());
  EXPECT_EQ(batch.ApproximateBytes(), 0u);
}

TEST(WriteBatchTest, PutOwnedTakesTheValuesBuffer) {
  WriteBatch batch;
  std::string value(1 << 20, 'v');
  const char* data = value.data();
  batch.PutOwned(Cf::kDefault, "k", std::move(value));
  ASSERT_EQ(batch.Count(), 1u);
  EXPECT_EQ(batch.ops()[0].type, WriteBatch::OpType::kPut);
  EXPECT_EQ(batch.ops()[0].value.size(), size_t{1} << 20);
  EXPECT_EQ(batch.ops()[0].value.data(), data) << "moved, not copied";
  EXPECT_EQ(batch.ApproximateBytes(), 1u + (1u << 20));
}

TEST(WriteBatchTest, KeepsBinaryKeys) {
  WriteBatch batch;
  const std::string key("a\0b", 3);
  const std::string value("\xff\x00", 2);
  batch.Put(Cf::kWrite, key, value);
  EXPECT_EQ(batch.ops()[0].key, key);
  EXPECT_EQ(batch.ops()[0].value, value);
}

TEST(WriteBatchTest, ValidateRejectsBackwardRange) {
  WriteBatch batch;
  batch.Put(Cf::kDefault, "a", "1");
  batch.DeleteRange(Cf::kDefault, "z", "a");
  Status st = batch.Validate();
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
  EXPECT_NE(st.message().find("op 1"), std::string_view::npos) << st.ToString();
}

TEST(WriteBatchTest, ValidateAcceptsEmptyRange) {
  WriteBatch batch;
  batch.DeleteRange(Cf::kDefault, "k", "k");
  EXPECT_TRUE(batch.Validate().ok());
}

TEST(WriteBatchTest, ValidateRejectsUnknownColumnFamily) {
  WriteBatch batch;
  batch.Put(static_cast<Cf>(9), "a", "1");
  EXPECT_TRUE(batch.Validate().IsInvalidArgument());
}

TEST(WriteBatchTest, ValidateComparesBytesUnsigned) {
  // "\x80" sorts after "a" bytewise even though char may be signed.
  WriteBatch batch;
  batch.DeleteRange(Cf::kDefault, "a", "\x80");
  EXPECT_TRUE(batch.Validate().ok());
}

}  // namespace
}  // namespace micedb::storage
