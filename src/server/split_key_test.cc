// The size and key-count split checker's choice of key (split_key.h): half the region, at a
// transactional key's start, and no split when the records do not bear the estimate out.
#include "server/split_key.h"

#include <gtest/gtest.h>

#include "storage/mem_engine.h"
#include "storage/write_batch.h"
#include "txn/mvcc.h"

namespace micedb::server {
namespace {

class SplitKeyTest : public ::testing::Test {
 protected:
  // `n` raw keys r000..r<n-1> of `value_bytes` each.
  void PutRaw(int n, size_t value_bytes) {
    storage::WriteBatch wb;
    for (int i = 0; i < n; ++i)
      wb.Put(storage::Cf::kDefault, Raw(i), std::string(value_bytes, 'x'));
    ASSERT_TRUE(engine_.Write(wb, {}).ok());
  }
  static std::string Raw(int i) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "r%03d", i);
    return buf;
  }
  storage::MemEngine engine_;
  store::RegionDescriptor region_;  // everything
};

TEST_F(SplitKeyTest, SplitsAtHalfWhenTheRecordsHoldMoreThanTheLimit) {
  PutRaw(10, 96);  // ten records of 100 bytes: 1,000 bytes
  // Estimated 1,000 bytes against a limit of 800: half is reached at the fifth record.
  EXPECT_EQ(FindSplitKey(&engine_, region_, 1000, 10, true, {800, 1000}), Raw(4));
  // By keys: a limit of 8 keys, estimated 10: the sixth key starts the upper half.
  EXPECT_EQ(FindSplitKey(&engine_, region_, 0, 10, false, {1 << 20, 8}), Raw(5));
}

TEST_F(SplitKeyTest, EstimatesTheRecordsDoNotBearOutSplitNothing) {
  // Five records (500 bytes) estimated at 1,200 (the whole pre-split range, say) against a
  // limit of 800: the region is under the limit, however the estimate reads.
  PutRaw(5, 96);
  EXPECT_EQ(FindSplitKey(&engine_, region_, 1200, 5, true, {800, 1000}), "");
  EXPECT_EQ(FindSplitKey(&engine_, region_, 0, 40, false, {1 << 20, 20}), "");
  // Only the records inside the region count.
  PutRaw(20, 96);
  region_.set_end_key(Raw(6));
  EXPECT_EQ(FindSplitKey(&engine_, region_, 2000, 20, true, {800, 1000}), "");
}

TEST_F(SplitKeyTest, ATransactionalKeysVersionsStayTogether) {
  storage::WriteBatch wb;
  for (int i = 0; i < 4; ++i) {
    const std::string ekey = txn::EncodeKey("k" + std::to_string(i));
    for (uint64_t ts = 1; ts <= 5; ++ts) {
      wb.Put(storage::Cf::kWrite, txn::KeyWithTs(ekey, ts), std::string(90, 'v'));
    }
  }
  ASSERT_TRUE(engine_.Write(wb, {}).ok());
  // 20 records of about 100 bytes; half (1,000 bytes) falls inside k1's versions: the split
  // goes at the next key's start, k2.
  const std::string key = FindSplitKey(&engine_, region_, 2000, 20, true, {1500, 1000});
  EXPECT_EQ(key, txn::EncodeKey("k2"));
}

TEST_F(SplitKeyTest, LongTransactionalValuesCountWhereTheirKeysAre) {
  // Write records are small; each put's value (longer than a record holds) is in `default`
  // under the same E(K).
  storage::WriteBatch wb;
  for (int i = 0; i < 10; ++i) {
    const std::string ekey = txn::EncodeKey("k" + std::to_string(i));
    wb.Put(storage::Cf::kWrite, txn::KeyWithTs(ekey, 20), "w");
    wb.Put(storage::Cf::kDefault, txn::KeyWithTs(ekey, 10), std::string(380, 'v'));
  }
  ASSERT_TRUE(engine_.Write(wb, {}).ok());
  // About 4,100 bytes: half (2,000) is passed with k4's value, so the split goes at k5.
  EXPECT_EQ(FindSplitKey(&engine_, region_, 4000, 20, true, {3000, 1000}), txn::EncodeKey("k5"));
  // Under the limit, whatever the estimate says.
  EXPECT_EQ(FindSplitKey(&engine_, region_, 9000, 20, true, {8000, 1000}), "");
}

}  // namespace
}  // namespace micedb::server
