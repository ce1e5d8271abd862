// Hashing shared by the checkers, the KV state machine and the trace: FNV-1a over bytes and a
// SplitMix64 finaliser to fold values together. Fixed algorithms (not std::hash), so a run's
// trace hash is the same in every build.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/strong_id.h"
#include "micedb/raft.pb.h"

namespace micedb::sim {

inline uint64_t Mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Folds v into h; order matters, so a sequence hashes differently from its permutations.
inline uint64_t HashCombine(uint64_t h, uint64_t v) {
  return Mix64(h + 0x9e3779b97f4a7c15ULL + Mix64(v));
}

inline uint64_t HashBytes(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// What an entry says, independent of where it sits: its type and payload.
inline uint64_t EntryContentHash(const raft::Entry& e) {
  return HashCombine(HashBytes(e.data()), static_cast<uint64_t>(e.type()));
}

// Digest of an applied sequence after appending one more entry. Every replica that applies
// the same entries in the same order computes the same chain, so comparing two digests
// compares two whole histories.
inline uint64_t ChainDigest(uint64_t prev, Term term, uint64_t content) {
  return HashCombine(HashCombine(prev, term.value()), content);
}

}  // namespace micedb::sim
