// ScanPager over a real state machine (LocalBackend on a MemEngine), without a network.
#include "kv/grpc/scan_pager.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <future>
#include <string>
#include <vector>

#include "kv/command_result.h"
#include "kv/local_backend.h"
#include "storage/mem_engine.h"

namespace micedb::kv {
namespace {

Result<CommandResult> ExecuteAndWait(KvBackend& backend, Command cmd) {
  std::promise<Result<CommandResult>> promise;
  auto future = promise.get_future();
  backend.Execute(std::move(cmd), ReadMode::kLinearizable,
                  [&promise](Result<CommandResult> r) { promise.set_value(std::move(r)); });
  return future.get();
}

struct Scanned {
  Status status;
  std::vector<std::string> keys;
  std::vector<std::string> values;
  size_t pages = 0;
  size_t empty_pages = 0;
  std::vector<size_t> message_bytes;
};

// Runs the pager to the end, one page at a time.
Scanned RunToEnd(ScanPager& pager) {
  Scanned out;
  while (!pager.finished()) {
    std::promise<std::pair<Status, std::vector<v1::ScanResponse>>> promise;
    auto future = promise.get_future();
    pager.Next([&promise](Status st, std::vector<v1::ScanResponse> messages) {
      promise.set_value({std::move(st), std::move(messages)});
    });
    auto [st, messages] = future.get();
    ++out.pages;
    if (!st.ok()) {
      out.status = std::move(st);
      break;
    }
    if (messages.empty()) {
      ++out.empty_pages;
    }
    for (const auto& m : messages) {
      size_t bytes = 0;
      for (const auto& p : m.pairs()) {
        out.keys.push_back(p.key());
        out.values.push_back(p.value());
        bytes += p.key().size() + p.value().size();
      }
      out.message_bytes.push_back(bytes);
    }
  }
  return out;
}

class ScanPagerTest : public ::testing::Test {
 protected:
  void SetUp() override { backend_ = std::move(LocalBackend::Open(&engine_, &clock_)).value(); }

  void Put(const std::string& key, const std::string& value, int64_t expire_at_ms = 0) {
    Command cmd;
    cmd.mutable_set()->set_key(key);
    cmd.mutable_set()->set_value(value);
    cmd.mutable_set()->set_expire_at_ms(expire_at_ms);
    ASSERT_TRUE(ExecuteAndWait(*backend_, std::move(cmd)).ok());
  }

  // Keys k0000..k(n-1), value "v" + key.
  void PutNumbered(int n) {
    Command cmd;
    for (int i = 0; i < n; ++i) {
      KeyValue* kv = cmd.mutable_mset()->add_pairs();
      kv->set_key(fmt::format("k{:04}", i));
      kv->set_value("v" + kv->key());
    }
    ASSERT_TRUE(ExecuteAndWait(*backend_, std::move(cmd)).ok());
  }

  Scanned Scan(const KvApiOptions& options, const v1::ScanRequest& req) {
    KvApiOptions o = options;
    o.clock = &clock_;
    KvApi api(backend_.get(), o);
    auto pager = ScanPager::Create(&api, req);
    if (!pager.ok()) {
      Scanned failed;
      failed.status = pager.status();
      return failed;
    }
    return RunToEnd(**pager);
  }

  storage::MemEngine engine_;
  ManualClock clock_;
  std::unique_ptr<LocalBackend> backend_;
};

TEST_F(ScanPagerTest, PagesThroughEveryKeyInOrder) {
  PutNumbered(1000);
  Scanned s = Scan({.scan_page_keys = 64, .scan_message_bytes = 100}, v1::ScanRequest());
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  ASSERT_EQ(s.keys.size(), 1000u);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(s.keys[i], fmt::format("k{:04}", i));
    ASSERT_EQ(s.values[i], "v" + s.keys[i]);
  }
  EXPECT_EQ(s.pages, 16u);  // ceil(1000 / 64)
  // Messages are closed once they pass 100 bytes; a pair is 10 bytes here.
  for (size_t bytes : s.message_bytes) {
    EXPECT_LE(bytes, 110u);
  }
}

TEST_F(ScanPagerTest, StopsAtLimitAndEndKey) {
  PutNumbered(400);
  v1::ScanRequest req;
  req.set_limit(300);
  Scanned s = Scan({.scan_page_keys = 64}, req);
  ASSERT_EQ(s.keys.size(), 300u);
  EXPECT_EQ(s.keys.back(), "k0299");

  req.Clear();
  req.set_start("k0050");
  req.set_end("k0150");
  req.set_keys_only(true);
  s = Scan({.scan_page_keys = 64}, req);
  ASSERT_EQ(s.keys.size(), 100u);
  EXPECT_EQ(s.keys.front(), "k0050");
  EXPECT_EQ(s.keys.back(), "k0149");
  EXPECT_EQ(s.values.front(), "");
}

TEST_F(ScanPagerTest, LimitZeroOrTooLargeMeansTheServerBound) {
  PutNumbered(300);
  v1::ScanRequest req;
  EXPECT_EQ(Scan({.max_scan_limit = 120}, req).keys.size(), 120u);
  req.set_limit(1'000'000'000);
  EXPECT_EQ(Scan({.max_scan_limit = 120}, req).keys.size(), 120u);
}

TEST_F(ScanPagerTest, ExpiredKeysAreSkippedNotCounted) {
  const int64_t soon = clock_.NowWallMillis() + 10;
  for (int i = 0; i < 100; ++i) {
    Put(fmt::format("a{:03}", i), "x", soon);
  }
  for (int i = 0; i < 5; ++i) {
    Put(fmt::format("b{}", i), "y");
  }
  clock_.Advance(std::chrono::seconds(1));
  v1::ScanRequest req;
  req.set_limit(5);
  Scanned s = Scan({.scan_page_keys = 16}, req);
  ASSERT_TRUE(s.status.ok());
  EXPECT_EQ(s.keys, (std::vector<std::string>{"b0", "b1", "b2", "b3", "b4"}));
  EXPECT_GE(s.empty_pages, 6u);  // 100 expired keys, 16 at a time
}

TEST_F(ScanPagerTest, LargeValuesShrinkThePages) {
  for (int i = 0; i < 20; ++i) {
    Put(fmt::format("k{:02}", i), std::string(1000, 'v'));
  }
  KvApiOptions options{.scan_page_keys = 256, .scan_page_bytes = 4000};
  options.clock = &clock_;
  KvApi api(backend_.get(), options);
  auto pager = std::move(ScanPager::Create(&api, v1::ScanRequest())).value();
  EXPECT_EQ(pager->page_keys(), 256u);
  Scanned s = RunToEnd(*pager);
  EXPECT_EQ(s.keys.size(), 20u);
  EXPECT_EQ(pager->page_keys(), 3u);  // 4000 / 1003 bytes per pair
}

TEST_F(ScanPagerTest, EmptyOrInvertedRangeNeedsNoPage) {
  PutNumbered(10);
  KvApi api(backend_.get(), {.clock = &clock_});
  v1::ScanRequest req;
  req.set_start("k0005");
  req.set_end("k0005");
  auto pager = std::move(ScanPager::Create(&api, req)).value();
  EXPECT_TRUE(pager->finished());
  req.set_end("k0001");
  EXPECT_TRUE(std::move(ScanPager::Create(&api, req)).value()->finished());
}

TEST_F(ScanPagerTest, RefusesLongBoundsAndUnknownConsistency) {
  KvApi api(backend_.get(), {.max_key_bytes = 4, .clock = &clock_});
  v1::ScanRequest req;
  req.set_end("12345");
  auto pager = ScanPager::Create(&api, req);
  ASSERT_FALSE(pager.ok());
  EXPECT_EQ(pager.status().message(), "scan bound is 5 bytes, longer than the limit of 4");
  req.Clear();
  req.set_consistency(static_cast<v1::ReadConsistency>(9));
  EXPECT_TRUE(ScanPager::Create(&api, req).status().IsInvalidArgument());
}

// Answers every scan with one key and a "next" that does not move forward.
class StuckBackend final : public KvBackend {
 public:
  void Execute(Command cmd, ReadMode, Callback done) override {
    CommandResult r = ArrayResult();
    *r.mutable_array()->add_items() = BulkResult(cmd.scan().start());
    *r.mutable_array()->add_items() = ArrayResult();
    done(std::move(r));
  }
};

TEST_F(ScanPagerTest, ABackendThatDoesNotAdvanceIsAnError) {
  StuckBackend stuck;
  KvApi api(&stuck, {.clock = &clock_});
  v1::ScanRequest req;
  req.set_start("a");
  auto pager = std::move(ScanPager::Create(&api, req)).value();
  Scanned s = RunToEnd(*pager);
  EXPECT_EQ(s.status.code(), StatusCode::kInternal);
  EXPECT_EQ(s.pages, 1u);
  EXPECT_TRUE(pager->finished());
}

}  // namespace
}  // namespace micedb::kv
