// Result<T>: either a value of type T or a non-OK Status.
#pragma once

#include <cassert>
#include <optional>
#include <utility>

#include "common/status.h"

namespace micedb {

template <typename T>
class [[nodiscard]] Result {
 public:
  // From a value: ok() is true.
  Result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  // From an error status. Passing an OK status is a programming error.
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!status_.ok());
    if (status_.ok()) {
      status_ = Status::Internal("Result constructed from OK status");
    }
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  // Access to the value; must only be called when ok().
  T& value() & {
    assert(ok());
    return *value_;
  }
  const T& value() const& {
    assert(ok());
    return *value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(*value_);
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // The value, or `fallback` when this holds an error.
  T value_or(T fallback) const& { return ok() ? *value_ : std::move(fallback); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace micedb

#define MICEDB_CONCAT_INNER(a, b) a##b
#define MICEDB_CONCAT(a, b) MICEDB_CONCAT_INNER(a, b)
// MICEDB_ASSIGN_OR_RETURN(auto x, Fn()); returns the error status from the enclosing function.
#define MICEDB_ASSIGN_OR_RETURN(lhs, expr) \
  MICEDB_ASSIGN_OR_RETURN_IMPL(MICEDB_CONCAT(_micedb_res_, __LINE__), lhs, expr)
// `tmp` and `lhs` are a name and a declaration, which cannot be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define MICEDB_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
