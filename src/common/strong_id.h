// Strong integer types so that a node id, a region id, a raft term and a log index cannot be
// mixed up. StrongId has equality and ordering only; StrongCounter also has the arithmetic a
// term or an index needs.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

#include <fmt/format.h>

namespace micedb {

template <typename Tag>
class StrongId {
 public:
  constexpr StrongId() = default;
  constexpr explicit StrongId(uint64_t v) : v_(v) {}
  constexpr uint64_t value() const { return v_; }
  constexpr bool valid() const { return v_ != 0; }  // 0 means "none"
  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 misreads the defaulted <=>.
  constexpr auto operator<=>(const StrongId&) const = default;

 private:
  uint64_t v_ = 0;
};

template <typename Tag>
class StrongCounter {
 public:
  constexpr StrongCounter() = default;
  constexpr explicit StrongCounter(uint64_t v) : v_(v) {}
  constexpr uint64_t value() const { return v_; }
  // NOLINTNEXTLINE(modernize-use-nullptr): a clang-tidy false positive on defaulted <=>
  constexpr auto operator<=>(const StrongCounter&) const = default;

  constexpr StrongCounter& operator++() {
    ++v_;
    return *this;
  }
  constexpr StrongCounter operator++(int) { return StrongCounter(v_++); }
  constexpr StrongCounter& operator--() {
    --v_;
    return *this;
  }
  constexpr StrongCounter operator+(uint64_t n) const { return StrongCounter(v_ + n); }
  constexpr StrongCounter operator-(uint64_t n) const { return StrongCounter(v_ - n); }
  constexpr StrongCounter& operator+=(uint64_t n) {
    v_ += n;
    return *this;
  }
  // Distance between two counters (this must not be smaller than `o`).
  constexpr uint64_t operator-(const StrongCounter& o) const { return v_ - o.v_; }

 private:
  uint64_t v_ = 0;
};

struct NodeIdTag {};
struct RegionIdTag {};
struct StoreIdTag {};
struct TermTag {};
struct LogIndexTag {};

using NodeId = StrongId<NodeIdTag>;
using RegionId = StrongId<RegionIdTag>;
using StoreId = StrongId<StoreIdTag>;
using Term = StrongCounter<TermTag>;
using LogIndex = StrongCounter<LogIndexTag>;

template <typename Tag>
std::ostream& operator<<(std::ostream& os, StrongId<Tag> id) {
  return os << id.value();
}
template <typename Tag>
std::ostream& operator<<(std::ostream& os, StrongCounter<Tag> c) {
  return os << c.value();
}

}  // namespace micedb

template <typename Tag>
struct std::hash<micedb::StrongId<Tag>> {
  size_t operator()(micedb::StrongId<Tag> id) const noexcept {
    return std::hash<uint64_t>()(id.value());
  }
};
template <typename Tag>
struct std::hash<micedb::StrongCounter<Tag>> {
  size_t operator()(micedb::StrongCounter<Tag> c) const noexcept {
    return std::hash<uint64_t>()(c.value());
  }
};

template <typename Tag>
struct fmt::formatter<micedb::StrongId<Tag>> : fmt::formatter<uint64_t> {
  template <typename Ctx>
  auto format(micedb::StrongId<Tag> id, Ctx& ctx) const {
    return fmt::formatter<uint64_t>::format(id.value(), ctx);
  }
};
template <typename Tag>
struct fmt::formatter<micedb::StrongCounter<Tag>> : fmt::formatter<uint64_t> {
  template <typename Ctx>
  auto format(micedb::StrongCounter<Tag> c, Ctx& ctx) const {
    return fmt::formatter<uint64_t>::format(c.value(), ctx);
  }
};
