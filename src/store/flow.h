// Per-region traffic: keys and bytes written and read through this store, counted where the
// store accepts a write as leader (Store::Propose) and where it serves a read. Cumulative;
// the node's heartbeats send the difference since their last report (the coordinator's
// read/write rates, later the hot-region scheduler's input).
//
// Thread-safety: Add from any thread (a shared lock and relaxed atomics); Snapshot likewise.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "micedb/region.pb.h"

namespace micedb::store {

struct FlowCounts {
  uint64_t bytes_written = 0;
  uint64_t keys_written = 0;
  uint64_t bytes_read = 0;
  uint64_t keys_read = 0;

  FlowCounts& operator+=(const FlowCounts& o) {
    bytes_written += o.bytes_written;
    keys_written += o.keys_written;
    bytes_read += o.bytes_read;
    keys_read += o.keys_read;
    return *this;
  }
  // The traffic since `earlier` (a counter that went back, a region recreated, counts from 0).
  FlowCounts Since(const FlowCounts& earlier) const {
    auto d = [](uint64_t now, uint64_t then) { return now >= then ? now - then : now; };
    return {d(bytes_written, earlier.bytes_written), d(keys_written, earlier.keys_written),
            d(bytes_read, earlier.bytes_read), d(keys_read, earlier.keys_read)};
  }
};

// The keys a request names (a write's or a read's): MSET's pairs, DEL's keys, a transaction's
// commands summed; one for the rest.
uint64_t KeysOf(const region::RegionRequest& req);
// The keys a read's answer holds: an array's length, else one.
uint64_t KeysOf(const region::RegionResponse& resp);

class FlowMeter {
 public:
  // Both return whether the region's requests are sampled now (AddSample).
  bool AddWrite(uint64_t region, uint64_t keys, uint64_t bytes) {
    Flow& f = Get(region);
    f.keys_written.fetch_add(keys, std::memory_order_relaxed);
    f.bytes_written.fetch_add(bytes, std::memory_order_relaxed);
    return f.sampling.load(std::memory_order_relaxed);
  }
  bool AddRead(uint64_t region, uint64_t keys, uint64_t bytes) {
    Flow& f = Get(region);
    f.keys_read.fetch_add(keys, std::memory_order_relaxed);
    f.bytes_read.fetch_add(bytes, std::memory_order_relaxed);
    return f.sampling.load(std::memory_order_relaxed);
  }

  // Load split (store/load_split.h): while a region is sampled, the first key of every
  // stride-th request is kept, at most kMaxSamples; when they are full every other one goes
  // and the stride doubles, so the samples stay spread over the whole time (and no random
  // source is needed).
  static constexpr size_t kMaxSamples = 512;
  void StartSampling(uint64_t region) {
    Flow& f = Get(region);
    std::lock_guard<std::mutex> l(f.sample_mu);
    f.samples.clear();
    f.seen = 0;
    f.stride = 1;
    f.sampling.store(true, std::memory_order_relaxed);
  }
  // Stops sampling and hands over what was kept.
  std::vector<std::string> TakeSamples(uint64_t region) {
    Flow& f = Get(region);
    std::lock_guard<std::mutex> l(f.sample_mu);
    f.sampling.store(false, std::memory_order_relaxed);
    return std::exchange(f.samples, {});
  }
  void AddSample(uint64_t region, std::string_view key) {
    Flow& f = Get(region);
    std::lock_guard<std::mutex> l(f.sample_mu);
    if (!f.sampling.load(std::memory_order_relaxed) || f.seen++ % f.stride != 0) return;
    f.samples.emplace_back(key);
    if (f.samples.size() < kMaxSamples) return;
    for (size_t i = 0; i < f.samples.size() / 2; ++i) f.samples[i] = std::move(f.samples[2 * i]);
    f.samples.resize(f.samples.size() / 2);
    f.stride *= 2;
  }
  // Keys read from one region so far (0 for a region never counted).
  uint64_t KeysRead(uint64_t region) const {
    std::shared_lock lock(mu_);
    auto it = flows_.find(region);
    return it == flows_.end() ? 0 : it->second->keys_read.load(std::memory_order_relaxed);
  }
  std::map<uint64_t, FlowCounts> Snapshot() const {
    std::shared_lock lock(mu_);
    std::map<uint64_t, FlowCounts> out;
    for (const auto& [id, f] : flows_) {
      out[id] = FlowCounts{f->bytes_written.load(std::memory_order_relaxed),
                           f->keys_written.load(std::memory_order_relaxed),
                           f->bytes_read.load(std::memory_order_relaxed),
                           f->keys_read.load(std::memory_order_relaxed)};
    }
    return out;
  }

 private:
  struct Flow {
    std::atomic<uint64_t> bytes_written{0};
    std::atomic<uint64_t> keys_written{0};
    std::atomic<uint64_t> bytes_read{0};
    std::atomic<uint64_t> keys_read{0};
    std::atomic<bool> sampling{false};
    std::mutex sample_mu;
    std::vector<std::string> samples;  // guarded by sample_mu, as are seen and stride
    uint64_t seen = 0;
    uint64_t stride = 1;
  };
  Flow& Get(uint64_t region) {
    {
      std::shared_lock lock(mu_);
      if (auto it = flows_.find(region); it != flows_.end()) return *it->second;
    }
    std::unique_lock lock(mu_);
    auto& slot = flows_[region];
    if (!slot) slot = std::make_unique<Flow>();
    return *slot;  // entries are never erased: the reference stays valid
  }

  mutable std::shared_mutex mu_;
  std::unordered_map<uint64_t, std::unique_ptr<Flow>> flows_;
};

}  // namespace micedb::store
