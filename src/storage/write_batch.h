// WriteBatch: an ordered list of puts, deletes and range deletes over any column families,
// which an Engine applies atomically (all or nothing). The batch is engine-neutral: the same
// batch can be written to a RocksEngine, a MemEngine or a FaultEngine.
//
// Thread-compatible: one thread may build a batch, then hand it to others read-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "storage/cf.h"

namespace micedb::storage {

class WriteBatch {
 public:
  enum class OpType : uint8_t { kPut, kDelete, kDeleteRange };

  struct Op {
    OpType type;
    Cf cf;
    std::string key;    // kDeleteRange: the inclusive begin key
    std::string value;  // kPut: the value; kDeleteRange: the exclusive end key; else empty
  };

  WriteBatch() = default;

  // Sets `key` to `value` in `cf`. Later ops in the batch see the effect of earlier ones.
  void Put(Cf cf, std::string_view key, std::string_view value);
  // The same, taking the value's buffer: no copy of a big value.
  void PutOwned(Cf cf, std::string_view key, std::string value);
  // Removes `key` from `cf`; removing an absent key is not an error.
  void Delete(Cf cf, std::string_view key);
  // Removes every key k of `cf` with begin <= k < end. begin == end deletes nothing;
  // begin > end makes the whole batch invalid (see Validate).
  void DeleteRange(Cf cf, std::string_view begin, std::string_view end);

  void Clear();

  // Number of ops.
  size_t Count() const { return ops_.size(); }
  bool empty() const { return ops_.empty(); }
  // Sum of the key and value bytes of every op; a cheap measure for batching limits.
  size_t ApproximateBytes() const { return bytes_; }

  // The ops in the order they were added.
  const std::vector<Op>& ops() const { return ops_; }

  // InvalidArgument naming the first bad op (a column family out of range, or a range whose
  // begin sorts after its end); OK otherwise. Engines call this before applying anything,
  // so an invalid batch changes nothing.
  Status Validate() const;

 private:
  std::vector<Op> ops_;
  size_t bytes_ = 0;
};

}  // namespace micedb::storage
