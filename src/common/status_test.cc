#include "common/status.h"

#include <gtest/gtest.h>

#include "common/result.h"
#include "common/strong_id.h"

namespace micedb {
namespace {

TEST(StatusTest, OkIsCheapAndEmpty) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kOk);
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, ErrorCarriesCodeAndMessage) {
  Status s = Status::NotFound("key k1");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_EQ(s.ToString(), "NotFound: key k1");
  Status copy = s;  // NOLINT(performance-unnecessary-copy-initialization): tests the copy
  EXPECT_EQ(copy.ToString(), s.ToString());
}

Status FailsWhen(bool fail) {
  if (fail) {
    return Status::IoError("disk");
  }
  return Status::OK();
}

Status Chain(bool fail) {
  MICEDB_RETURN_IF_ERROR(FailsWhen(fail));
  return Status::Internal("reached");
}

TEST(StatusTest, ReturnIfErrorPropagates) {
  EXPECT_EQ(Chain(true).code(), StatusCode::kIoError);
  EXPECT_EQ(Chain(false).code(), StatusCode::kInternal);
}

Result<int> Half(int x) {
  if (x % 2) {
    return Status::InvalidArgument("odd");
  }
  return x / 2;
}

Result<int> Quarter(int x) {
  MICEDB_ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(ResultTest, ValueAndError) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_FALSE(Quarter(6).ok());
  EXPECT_TRUE(Quarter(6).status().IsInvalidArgument());
  EXPECT_EQ(Quarter(3).value_or(-1), -1);
}

TEST(StrongIdTest, OrderingAndArithmetic) {
  LogIndex i(5);
  EXPECT_EQ((i + 3).value(), 8u);
  EXPECT_EQ(LogIndex(9) - i, 4u);
  EXPECT_LT(Term(1), Term(2));
  EXPECT_FALSE(NodeId().valid());
  EXPECT_TRUE(NodeId(3).valid());
  EXPECT_EQ(fmt::format("{}", Term(7)), "7");
}

}  // namespace
}  // namespace micedb
