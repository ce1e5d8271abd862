#include "kv/grpc/status_codes.h"

#include <gtest/gtest.h>

namespace micedb::kv {
namespace {

TEST(StatusCodesTest, OursToGrpc) {
  struct Case {
    Status ours;
    grpc::StatusCode grpc;
  };
  const Case cases[] = {
      {Status::OK(), grpc::StatusCode::OK},
      {Status::Unavailable("m"), grpc::StatusCode::UNAVAILABLE},
      {Status::NotLeader("m"), grpc::StatusCode::UNAVAILABLE},
      {Status::TimedOut("m"), grpc::StatusCode::DEADLINE_EXCEEDED},
      {Status::InvalidArgument("m"), grpc::StatusCode::INVALID_ARGUMENT},
      {Status::NotFound("m"), grpc::StatusCode::NOT_FOUND},
      {Status::Aborted("m"), grpc::StatusCode::ABORTED},
      {Status::Busy("m"), grpc::StatusCode::RESOURCE_EXHAUSTED},
      {Status::ResourceExhausted("m"), grpc::StatusCode::RESOURCE_EXHAUSTED},
      {Status::NotSupported("m"), grpc::StatusCode::UNIMPLEMENTED},
      {Status::Corruption("m"), grpc::StatusCode::DATA_LOSS},
      {Status::IoError("m"), grpc::StatusCode::INTERNAL},
      {Status::Internal("m"), grpc::StatusCode::INTERNAL},
  };
  for (const Case& c : cases) {
    grpc::Status g = ToGrpcStatus(c.ours);
    EXPECT_EQ(g.error_code(), c.grpc) << c.ours.ToString();
    EXPECT_EQ(g.error_message(), c.ours.message());
  }
}

TEST(StatusCodesTest, GrpcToOurs) {
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "down")).ToString(),
            "Unavailable: down");
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "")).code(),
            StatusCode::kTimedOut);
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "")).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::CANCELLED, "")).code(),
            StatusCode::kAborted);
  EXPECT_EQ(FromGrpcStatus(grpc::Status(grpc::StatusCode::UNKNOWN, "")).code(),
            StatusCode::kInternal);
  // Round trip for the codes the service sends.
  for (const Status& s : {Status::Unavailable("a"), Status::TimedOut("b"),
                          Status::InvalidArgument("c"), Status::Internal("d")}) {
    EXPECT_EQ(FromGrpcStatus(ToGrpcStatus(s)).ToString(), s.ToString());
  }
}

}  // namespace
}  // namespace micedb::kv
