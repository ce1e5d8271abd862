#include "workload.h"

#include <algorithm>
#include <stdexcept>

namespace micedb::bench {

std::optional<double> ReadFractionOf(std::string_view workload) {
  if (workload == "write") {
    return 0.0;
  }
  if (workload == "read") {
    return 1.0;
  }
  if (workload == "rw50") {
    return 0.5;
  }
  if (workload == "read95") {
    return 0.95;
  }
  return std::nullopt;
}

void KeyNameInto(std::string_view prefix, uint64_t index, std::string& out) {
  out.assign(prefix);
  char digits[10];
  for (int i = 9; i >= 0; --i) {
    digits[i] = static_cast<char>('0' + index % 10);
    index /= 10;
  }
  out.append(digits, sizeof(digits));
}

std::string KeyName(std::string_view prefix, uint64_t index) {
  std::string out;
  KeyNameInto(prefix, index, out);
  return out;
}

Workload::Workload(WorkloadSpec spec, uint64_t seed) : spec_(std::move(spec)) {
  if (spec_.keys == 0) {
    throw std::invalid_argument("workload: keys must be at least 1");
  }
  if (spec_.dist == KeyDist::kZipf) {
    zipf_ = std::make_unique<ZipfGenerator>(spec_.keys, spec_.zipf_theta);
    scramble_ = std::make_unique<Scramble>(spec_.keys);
  }
  // Printable random bytes (values go through redis-cli and logs unharmed): 64 symbols, so
  // 6 bits of entropy per byte. The pool is 64 KiB plus one value, so any offset below 64 KiB
  // leaves a whole value.
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  Rng rng(seed ^ 0x5eed);
  pool_.resize(65536 + spec_.value_size);
  for (auto& c : pool_) {
    c = kAlphabet[rng.Next64() & 63];
  }
}

uint64_t Workload::NextKey(Rng& rng) const {
  if (zipf_) {
    return (*scramble_)(zipf_->Sample(rng.NextDouble()));
  }
  return rng.Uniform(spec_.keys);
}

std::string_view Workload::NextValue(Rng& rng) const {
  return std::string_view(pool_).substr(rng.Uniform(65536), spec_.value_size);
}

std::pair<uint64_t, uint64_t> TwoKeys(const Workload& wl, Rng& rng, uint64_t lo, uint64_t n) {
  const uint64_t a = wl.NextKey(rng) % n;
  uint64_t b = wl.NextKey(rng) % n;
  while (b == a) {
    b = rng.Uniform(n);
  }
  return {lo + a, lo + b};
}

std::pair<int64_t, int64_t> BankTransfer(int64_t from, int64_t to, int64_t max_amount, Rng& rng) {
  const int64_t most = std::min(from, max_amount);
  const int64_t amount =
      most > 0 ? static_cast<int64_t>(rng.Uniform(static_cast<uint64_t>(most))) + 1 : 0;
  return {from - amount, to + amount};
}

}  // namespace micedb::bench
