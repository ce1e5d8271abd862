// Status: the result of a fallible operation. Cheap when OK (a null pointer); otherwise it
// carries a code and a message. Thread-compatible: a Status may be copied between threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace micedb {

enum class StatusCode : int {
  kOk = 0,
  kNotFound,
  kInvalidArgument,
  kCorruption,
  kIoError,
  kAlreadyExists,
  kBusy,         // resource is held by someone else (e.g. a locked data directory)
  kUnavailable,  // try again later: no leader, node down
  kNotLeader,    // this replica cannot serve; the message may name the leader
  kAborted,      // operation given up (e.g. a dropped proposal)
  kTimedOut,
  kResourceExhausted,
  kNotSupported,
  kInternal,
};

// Name of a code, e.g. "NotFound".
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string_view msg);
  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status OK() { return Status(); }
  static Status NotFound(std::string_view msg) { return {StatusCode::kNotFound, msg}; }
  static Status InvalidArgument(std::string_view msg) {
    return {StatusCode::kInvalidArgument, msg};
  }
  static Status Corruption(std::string_view msg) { return {StatusCode::kCorruption, msg}; }
  static Status IoError(std::string_view msg) { return {StatusCode::kIoError, msg}; }
  static Status AlreadyExists(std::string_view msg) { return {StatusCode::kAlreadyExists, msg}; }
  static Status Busy(std::string_view msg) { return {StatusCode::kBusy, msg}; }
  static Status Unavailable(std::string_view msg) { return {StatusCode::kUnavailable, msg}; }
  static Status NotLeader(std::string_view msg) { return {StatusCode::kNotLeader, msg}; }
  static Status Aborted(std::string_view msg) { return {StatusCode::kAborted, msg}; }
  static Status TimedOut(std::string_view msg) { return {StatusCode::kTimedOut, msg}; }
  static Status ResourceExhausted(std::string_view msg) {
    return {StatusCode::kResourceExhausted, msg};
  }
  static Status NotSupported(std::string_view msg) { return {StatusCode::kNotSupported, msg}; }
  static Status Internal(std::string_view msg) { return {StatusCode::kInternal, msg}; }

  bool ok() const { return state_ == nullptr; }
  StatusCode code() const { return state_ ? state_->code : StatusCode::kOk; }
  // Empty for OK.
  std::string_view message() const { return state_ ? std::string_view(state_->msg) : ""; }
  // "OK" or "<CodeName>: <message>".
  std::string ToString() const;

  bool IsNotFound() const { return code() == StatusCode::kNotFound; }
  bool IsCorruption() const { return code() == StatusCode::kCorruption; }
  bool IsInvalidArgument() const { return code() == StatusCode::kInvalidArgument; }

  // Marks a status as deliberately ignored.
  void IgnoreError() const {}

 private:
  struct State {
    StatusCode code;
    std::string msg;
  };
  std::unique_ptr<State> state_;
};

}  // namespace micedb

// Returns from the enclosing function when `expr` (a Status) is not OK.
#define MICEDB_RETURN_IF_ERROR(expr)         \
  do {                                       \
    ::micedb::Status _micedb_st = (expr);    \
    if (!_micedb_st.ok()) return _micedb_st; \
  } while (0)
