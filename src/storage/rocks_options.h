// RocksOptions: the knobs of a RocksEngine, with defaults for a small machine (2 cores, a few
// GiB of memory). docs/storage.md says why each default is what it is.
#pragma once

#include <cstddef>
#include <cstdint>

namespace micedb::storage {

struct RocksOptions {
  // Create the directory and database when missing; when false a missing one is an error.
  bool create_if_missing = true;
  // One LRU block cache shared by all column families.
  size_t block_cache_bytes = size_t{64} << 20;
  // Size of one memtable of one column family, and how many a family may hold.
  size_t write_buffer_bytes = size_t{16} << 20;
  int max_write_buffers = 2;
  // Upper bound on memtable memory across all families; 0 means no bound.
  size_t total_write_buffer_bytes = size_t{64} << 20;
  // Flush and compaction threads together.
  int max_background_jobs = 2;
  // Bloom filter bits per key in every table; 0 turns filters off.
  int bloom_bits_per_key = 10;
  // A whole-key bloom filter in each memtable (2% of its size) for point reads that miss;
  // every family but raft.
  bool memtable_bloom = true;
  // Compress levels 2 and below with LZ4 and the bottom level with ZSTD. Levels 0 and 1 (soon
  // rewritten) and the raft family (short-lived log entries) are never compressed.
  bool compression = true;
  // Check more on open and during reads and compactions; stop on corruption rather than carry
  // on past it.
  bool paranoid_checks = true;
  // Open table files kept; -1 keeps all open.
  int max_open_files = 1024;
  // Write data files to disk in the background every this many bytes, to avoid big stalls.
  uint64_t bytes_per_sync = uint64_t{1} << 20;
};

}  // namespace micedb::storage
