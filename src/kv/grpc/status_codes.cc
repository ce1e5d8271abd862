#include "kv/grpc/status_codes.h"

#include <string>

namespace micedb::kv {

grpc::Status ToGrpcStatus(const Status& status) {
  grpc::StatusCode code = grpc::StatusCode::INTERNAL;
  switch (status.code()) {
    case StatusCode::kOk:
      return grpc::Status::OK;
    case StatusCode::kUnavailable:
    case StatusCode::kNotLeader:
      code = grpc::StatusCode::UNAVAILABLE;
      break;
    case StatusCode::kTimedOut:
      code = grpc::StatusCode::DEADLINE_EXCEEDED;
      break;
    case StatusCode::kInvalidArgument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case StatusCode::kNotFound:
      code = grpc::StatusCode::NOT_FOUND;
      break;
    case StatusCode::kAlreadyExists:
      code = grpc::StatusCode::ALREADY_EXISTS;
      break;
    case StatusCode::kAborted:
      code = grpc::StatusCode::ABORTED;
      break;
    case StatusCode::kBusy:
    case StatusCode::kResourceExhausted:
      code = grpc::StatusCode::RESOURCE_EXHAUSTED;
      break;
    case StatusCode::kNotSupported:
      code = grpc::StatusCode::UNIMPLEMENTED;
      break;
    case StatusCode::kCorruption:
      code = grpc::StatusCode::DATA_LOSS;
      break;
    case StatusCode::kIoError:
    case StatusCode::kInternal:
      code = grpc::StatusCode::INTERNAL;
      break;
  }
  return grpc::Status(code, std::string(status.message()));
}

Status FromGrpcStatus(const grpc::Status& status) {
  const std::string& msg = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      return Status::OK();
    case grpc::StatusCode::UNAVAILABLE:
      return Status::Unavailable(msg);
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Status::TimedOut(msg);
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return Status::InvalidArgument(msg);
    case grpc::StatusCode::NOT_FOUND:
      return Status::NotFound(msg);
    case grpc::StatusCode::ALREADY_EXISTS:
      return Status::AlreadyExists(msg);
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::CANCELLED:
      return Status::Aborted(msg);
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return Status::ResourceExhausted(msg);
    case grpc::StatusCode::UNIMPLEMENTED:
      return Status::NotSupported(msg);
    case grpc::StatusCode::DATA_LOSS:
      return Status::Corruption(msg);
    default:
      return Status::Internal(msg);
  }
}

}  // namespace micedb::kv
