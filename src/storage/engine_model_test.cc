// RocksEngine and MemEngine given the same random operations must agree on every read: point
// gets, and iterators moved by the same random steps within random bounds and snapshots.
// A failure prints the seed; rerun with that seed to replay it.
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/random.h"
#include "storage/mem_engine.h"
#include "storage/rocks_engine.h"
#include "storage/test_util.h"

namespace micedb::storage {
namespace {

// Short keys over a small alphabet (with the bytes 0x00 and 0xff) so that ops collide often.
std::string RandomKey(Random& rnd) {
  static constexpr char kAlphabet[] = {'\x00', 'a', 'b', 'c', '\xff'};
  std::string key;
  const size_t len = rnd.Uniform(4);  // the empty key is a key too
  for (size_t i = 0; i < len; ++i) {
    key.push_back(kAlphabet[rnd.Uniform(sizeof kAlphabet)]);
  }
  return key;
}

void CompareIterators(Iterator& rocks, Iterator& mem, Random& rnd, const std::string& trace) {
  for (int step = 0; step < 30; ++step) {
    std::string what;
    const std::string target = RandomKey(rnd);
    switch (rnd.Uniform(6)) {
      case 0:
        rocks.SeekToFirst(), mem.SeekToFirst(), what = "SeekToFirst";
        break;
      case 1:
        rocks.SeekToLast(), mem.SeekToLast(), what = "SeekToLast";
        break;
      case 2:
        rocks.Seek(target), mem.Seek(target), what = "Seek";
        break;
      case 3:
        rocks.SeekForPrev(target), mem.SeekForPrev(target), what = "SeekForPrev";
        break;
      case 4:
        if (!mem.Valid()) {
          continue;
        }
        rocks.Next(), mem.Next(), what = "Next";
        break;
      default:
        if (!mem.Valid()) {
          continue;
        }
        rocks.Prev(), mem.Prev(), what = "Prev";
        break;
    }
    ASSERT_EQ(rocks.Valid(), mem.Valid()) << trace << " step " << step << " " << what;
    ASSERT_OK(rocks.status());
    if (mem.Valid()) {
      ASSERT_EQ(rocks.key(), mem.key()) << trace << " step " << step << " " << what;
      ASSERT_EQ(rocks.value(), mem.value()) << trace << " step " << step << " " << what;
    }
  }
}

TEST(EngineModelTest, RocksAgreesWithMem) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Random rnd(seed);
    TempDir tmp;
    Result<std::unique_ptr<RocksEngine>> opened = RocksEngine::Open(tmp.Sub("db"), RocksOptions{});
    ASSERT_OK(opened);
    RocksEngine& rocks = **opened;
    MemEngine mem;
    std::vector<std::unique_ptr<Snapshot>> rocks_snaps, mem_snaps;

    for (int round = 0; round < 60; ++round) {
      WriteBatch batch;
      const int ops = 1 + static_cast<int>(rnd.Uniform(6));
      for (int i = 0; i < ops; ++i) {
        const Cf cf = rnd.OneIn(3) ? Cf::kLock : Cf::kDefault;
        std::string a = RandomKey(rnd), b = RandomKey(rnd);
        switch (rnd.Uniform(5)) {
          case 0:
            batch.Delete(cf, a);
            break;
          case 1:
            if (b < a) {
              std::swap(a, b);
            }
            batch.DeleteRange(cf, a, b);
            break;
          default:
            batch.Put(cf, a, "v" + std::to_string(round) + "." + std::to_string(i));
            break;
        }
      }
      ASSERT_OK(rocks.Write(batch, {}));
      ASSERT_OK(mem.Write(batch, {}));
      if (rnd.OneIn(10)) {
        ASSERT_OK(rocks.Flush());  // mix memtable and table reads
      }
      if (rnd.OneIn(8)) {
        rocks_snaps.push_back(rocks.GetSnapshot());
        mem_snaps.push_back(mem.GetSnapshot());
      }

      for (int check = 0; check < 4; ++check) {
        ReadOptions rocks_read, mem_read;
        if (!rocks_snaps.empty() && rnd.OneIn(2)) {
          const size_t which = rnd.Uniform(rocks_snaps.size());
          rocks_read.snapshot = rocks_snaps[which].get();
          mem_read.snapshot = mem_snaps[which].get();
        }
        if (rnd.OneIn(2)) {
          rocks_read.lower_bound = mem_read.lower_bound = RandomKey(rnd);
        }
        if (rnd.OneIn(2)) {
          rocks_read.upper_bound = mem_read.upper_bound = RandomKey(rnd);
        }
        const Cf cf = rnd.OneIn(3) ? Cf::kLock : Cf::kDefault;
        const std::string key = RandomKey(rnd);
        ASSERT_EQ(ValueOr(rocks, cf, key, rocks_read), ValueOr(mem, cf, key, mem_read))
            << "round " << round;
        std::unique_ptr<Iterator> rocks_it = rocks.NewIterator(cf, rocks_read);
        std::unique_ptr<Iterator> mem_it = mem.NewIterator(cf, mem_read);
        CompareIterators(*rocks_it, *mem_it, rnd, "round " + std::to_string(round));
        if (HasFatalFailure()) {
          return;
        }
      }
    }
    rocks_snaps.clear();
  }
}

}  // namespace
}  // namespace micedb::storage
