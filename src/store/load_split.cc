#include "store/load_split.h"

#include <algorithm>
#include <cstdint>

namespace micedb::store {

std::optional<std::string> LoadSplitKey(std::vector<std::string> samples, std::string_view start,
                                        std::string_view end, size_t min_samples) {
  const size_t n = samples.size();
  if (n == 0 || n < min_samples) return std::nullopt;
  std::sort(samples.begin(), samples.end());
  size_t best = n;  // index of the best key's first sample
  size_t best_gap = SIZE_MAX;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0 && samples[i] == samples[i - 1]) continue;  // below = i counts all before it
    const std::string& key = samples[i];
    if (key <= start || (!end.empty() && key >= end)) continue;
    const size_t gap = i > n - i ? i - (n - i) : (n - i) - i;
    if (gap < best_gap) {
      best_gap = gap;
      best = i;
    }
  }
  if (best == n || std::min(best, n - best) * 4 < n) return std::nullopt;
  return samples[best];
}

}  // namespace micedb::store
