// What each client of a closed-loop run does next: read or write, which key, which value.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "common/random.h"
#include "zipf.h"

namespace micedb::bench {

// One per client, never shared between threads (the project's seeded xoshiro generator).
using Rng = ::micedb::Random;

enum class OpType { kRead, kWrite };

enum class KeyDist { kUniform, kZipf };

struct WorkloadSpec {
  double read_fraction = 0.5;  // 0 = write-only, 1 = read-only
  uint64_t keys = 10000;       // key space: key indexes 0..keys-1
  KeyDist dist = KeyDist::kUniform;
  double zipf_theta = 0.99;
  size_t value_size = 100;
  std::string key_prefix = "bench:";
};

// Named workloads: "write" (write-only), "read" (read-only), "rw50" (50/50), "read95" (95%
// reads). Returns the read fraction, or nothing for an unknown name.
std::optional<double> ReadFractionOf(std::string_view workload);

// Key index -> key bytes: prefix followed by the index in 10 zero-padded decimal digits, so
// keys sort like their indexes and all have the same length.
std::string KeyName(std::string_view prefix, uint64_t index);
// Writes the same into `out` (replacing its contents) without allocating once warm.
void KeyNameInto(std::string_view prefix, uint64_t index, std::string& out);

// What every client shares, read-only: the spec, the Zipf table and a pool of random value
// bytes that values are sliced from (random so storage compression does not flatter anyone).
class Workload {
 public:
  explicit Workload(WorkloadSpec spec, uint64_t seed = 1);

  const WorkloadSpec& spec() const { return spec_; }
  // A key index drawn from the configured distribution.
  uint64_t NextKey(Rng& rng) const;
  OpType NextOp(Rng& rng) const {
    if (spec_.read_fraction >= 1.0) {
      return OpType::kRead;
    }
    if (spec_.read_fraction <= 0.0) {
      return OpType::kWrite;
    }
    return rng.NextDouble() < spec_.read_fraction ? OpType::kRead : OpType::kWrite;
  }
  // value_size bytes starting at a random offset of the pool.
  std::string_view NextValue(Rng& rng) const;

 private:
  WorkloadSpec spec_;
  std::unique_ptr<ZipfGenerator> zipf_;
  std::unique_ptr<Scramble> scramble_;
  std::string pool_;
};

// Two distinct key indexes in [lo, lo + n) (n >= 2), from the workload's distribution folded
// into the range (the transactional workloads: a bank's two accounts, multi4's pairs).
std::pair<uint64_t, uint64_t> TwoKeys(const Workload& wl, Rng& rng, uint64_t lo, uint64_t n);

// A bank transfer between accounts holding `from` and `to`: a random amount of 1..max_amount
// moved, never more than `from` holds (so no balance goes below 0; nothing moves from an empty
// account). The new balances; their sum is the old one.
std::pair<int64_t, int64_t> BankTransfer(int64_t from, int64_t to, int64_t max_amount, Rng& rng);

}  // namespace micedb::bench
