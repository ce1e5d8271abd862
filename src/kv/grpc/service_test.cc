// The real service on 127.0.0.1:0 over a LocalBackend, driven through KvClient.
#include "kv/grpc/service.h"

#include <gtest/gtest.h>

#include <fmt/format.h>

#include <atomic>
#include <thread>

#include "kv/grpc/client.h"
#include "kv/local_backend.h"
#include "storage/mem_engine.h"

namespace micedb::kv {
namespace {

// Fails the next `failures` commands, and the command numbered `fail_call` (counting from 1),
// with Unavailable; passes everything else through.
class FlakyBackend final : public KvBackend {
 public:
  explicit FlakyBackend(KvBackend* inner) : inner_(inner) {}
  void Execute(Command cmd, ReadMode mode, Callback done) override {
    const int n = ++calls;
    if (failures.load() > 0 || n == fail_call.load()) {
      if (n != fail_call.load()) {
        --failures;
      }
      return done(Status::Unavailable("no leader yet"));
    }
    inner_->Execute(std::move(cmd), mode, std::move(done));
  }

  std::atomic<int> failures{0};
  std::atomic<int> fail_call{0};
  std::atomic<int> calls{0};

 private:
  KvBackend* inner_;
};

class KvGrpcServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    local_ = std::move(LocalBackend::Open(&engine_, &clock_)).value();
    flaky_ = std::make_unique<FlakyBackend>(local_.get());
    // Small pages and messages, so a scan of a few hundred keys spans many of both.
    service_ = std::make_unique<KvGrpcService>(
        flaky_.get(),
        KvApiOptions{.scan_page_keys = 32, .scan_message_bytes = 64, .clock = &clock_});
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    builder.SetMaxReceiveMessageSize(256 << 20);  // as the node does
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port, 0);
    addr_ = fmt::format("127.0.0.1:{}", port);
    client_ = std::make_unique<KvClient>(
        addr_, KvClientOptions{.timeout = std::chrono::seconds(10),
                               .retry_backoff = std::chrono::milliseconds(5)});
  }

  void TearDown() override {
    if (server_) {
      server_->Shutdown();
    }
  }

  storage::MemEngine engine_;
  ManualClock clock_;
  std::unique_ptr<LocalBackend> local_;
  std::unique_ptr<FlakyBackend> flaky_;
  std::unique_ptr<KvGrpcService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string addr_;
  std::unique_ptr<KvClient> client_;
};

TEST_F(KvGrpcServiceTest, PutGetDelete) {
  ASSERT_TRUE(client_->Put("k", "v").ok());
  auto got = client_->Get("k");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, std::optional<std::string>("v"));
  EXPECT_EQ(*client_->Get("k", ReadMode::kLocalStale), std::optional<std::string>("v"));
  EXPECT_EQ(*client_->Get("absent"), std::nullopt);

  std::string binary("a\0b\xff", 4);
  ASSERT_TRUE(client_->Put(binary, binary).ok());
  EXPECT_EQ(*client_->Get(binary), std::optional<std::string>(binary));

  auto deleted = client_->Delete({"k", "absent", binary});
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 2u);
  EXPECT_EQ(*client_->Get("k"), std::nullopt);
}

TEST_F(KvGrpcServiceTest, TtlExpiresByTheServersClock) {
  ASSERT_TRUE(client_->Put("t", "v", 1000).ok());
  EXPECT_EQ(*client_->Get("t"), std::optional<std::string>("v"));
  clock_.Advance(std::chrono::milliseconds(1001));
  EXPECT_EQ(*client_->Get("t"), std::nullopt);
}

TEST_F(KvGrpcServiceTest, BatchGetAndBatchPut) {
  ASSERT_TRUE(client_->BatchPut({{"a", "1"}, {"b", "2"}, {"c", ""}}).ok());
  auto got = client_->BatchGet({"c", "x", "a", "b"});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, (std::vector<std::optional<std::string>>{"", std::nullopt, "1", "2"}));
  EXPECT_TRUE(client_->BatchGet({}).value().empty());
}

TEST_F(KvGrpcServiceTest, ScanAcrossManyPagesAndMessages) {
  std::vector<KvPair> all;
  all.reserve(500);
  for (int i = 0; i < 500; ++i) {
    all.push_back({fmt::format("s{:04}", i), fmt::format("v{}", i)});
  }
  ASSERT_TRUE(client_->BatchPut(all).ok());
  ASSERT_TRUE(client_->Put("t", "after").ok());

  auto scanned = client_->Scan(KvScanOptions{.start = "s", .end = "t"});
  ASSERT_TRUE(scanned.ok()) << scanned.status().ToString();
  EXPECT_EQ(*scanned, all);

  auto limited = client_->Scan(KvScanOptions{.start = "s0100", .limit = 250, .keys_only = true});
  ASSERT_TRUE(limited.ok());
  ASSERT_EQ(limited->size(), 250u);
  EXPECT_EQ(limited->front(), (KvPair{"s0100", ""}));
  EXPECT_EQ(limited->back().key, "s0349");

  // The whole keyspace, streamed to a visitor.
  size_t n = 0;
  ASSERT_TRUE(client_->Scan(KvScanOptions{}, [&n](const KvPair&) { ++n; }).ok());
  EXPECT_EQ(n, 501u);
}

TEST_F(KvGrpcServiceTest, CompareAndSwapConflict) {
  auto created = client_->CompareAndSwap({.key = "c", .expected = std::nullopt, .new_value = "1"});
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(created->swapped);
  EXPECT_EQ(created->previous, std::nullopt);

  auto conflict = client_->CompareAndSwap({.key = "c", .expected = "0", .new_value = "2"});
  ASSERT_TRUE(conflict.ok());
  EXPECT_FALSE(conflict->swapped);
  EXPECT_EQ(conflict->previous, std::optional<std::string>("1"));
  EXPECT_EQ(*client_->Get("c"), std::optional<std::string>("1"));

  auto swapped = client_->CompareAndSwap({.key = "c", .expected = "1", .new_value = "2"});
  ASSERT_TRUE(swapped.ok());
  EXPECT_TRUE(swapped->swapped);
  EXPECT_EQ(*client_->Get("c"), std::optional<std::string>("2"));

  auto removed = client_->CompareAndSwap({.key = "c", .expected = "2", .new_value = std::nullopt});
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(removed->swapped);
  EXPECT_EQ(*client_->Get("c"), std::nullopt);
}

TEST_F(KvGrpcServiceTest, ValuesOverGrpcsDefaultMessageSizeGetThrough) {
  const std::string big(6 << 20, 'b');  // gRPC's default receive limit is 4 MiB
  auto put = client_->Put("big", big);
  ASSERT_TRUE(put.ok()) << put.ToString();
  EXPECT_EQ(client_->Get("big").value(), std::optional<std::string>(big));
  auto scanned = client_->Scan(KvScanOptions{.start = "big", .limit = 1});
  ASSERT_TRUE(scanned.ok()) << scanned.status().ToString();
  ASSERT_EQ(scanned->size(), 1u);
  EXPECT_EQ(scanned->front().value.size(), big.size());
}

TEST_F(KvGrpcServiceTest, BadInputIsInvalidArgument) {
  Status st = client_->Put("", "v");
  EXPECT_TRUE(st.IsInvalidArgument()) << st.ToString();
  EXPECT_EQ(st.message(), "key is empty");
  EXPECT_TRUE(client_->Get(std::string((64 << 10) + 1, 'k')).status().IsInvalidArgument());
  EXPECT_TRUE(client_->Put("k", "v", -5).IsInvalidArgument());
  EXPECT_TRUE(client_->Delete({"a", ""}).status().IsInvalidArgument());
}

TEST_F(KvGrpcServiceTest, UnavailableIsRetried) {
  flaky_->failures = 2;
  ASSERT_TRUE(client_->Put("r", "1").ok());
  EXPECT_EQ(flaky_->calls.load(), 3);

  // CompareAndSwap is not idempotent, but the server said nothing was applied.
  flaky_->failures = 1;
  auto cas = client_->CompareAndSwap({.key = "r", .expected = "1", .new_value = "2"});
  ASSERT_TRUE(cas.ok()) << cas.status().ToString();
  EXPECT_TRUE(cas->swapped);

  // More failures than attempts: the error reaches the caller.
  flaky_->failures = 100;
  auto got = client_->Get("r");
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(got.status().message(), "no leader yet");
  flaky_->failures = 0;
}

TEST_F(KvGrpcServiceTest, ScanResumesAfterUnavailable) {
  std::vector<KvPair> all;
  all.reserve(100);
  for (int i = 0; i < 100; ++i) {
    all.push_back({fmt::format("k{:03}", i), "v"});
  }
  ASSERT_TRUE(client_->BatchPut(all).ok());
  // The third page of 32 fails after 64 pairs were streamed: the client asks again from the
  // key after the last one it got, so nothing is lost or repeated.
  const int before = flaky_->calls.load();
  flaky_->fail_call = before + 3;
  std::vector<KvPair> seen;
  Status st = client_->Scan(KvScanOptions{}, [&](KvPair p) { seen.push_back(std::move(p)); });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(seen, all);
  // Pages 1-2, the failed one, then 36 keys in two more pages.
  EXPECT_EQ(flaky_->calls.load() - before, 5);
}

TEST_F(KvGrpcServiceTest, NobodyListeningIsUnavailable) {
  server_->Shutdown();
  server_.reset();
  KvClient lonely(addr_, KvClientOptions{.timeout = std::chrono::seconds(3),
                                         .retry_backoff = std::chrono::milliseconds(10)});
  Status st = lonely.Put("k", "v");
  EXPECT_TRUE(st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kTimedOut)
      << st.ToString();
}

TEST_F(KvGrpcServiceTest, AClientLeavingMidScanDoesNotHurtTheServer) {
  std::vector<KvPair> all;
  all.reserve(2000);
  for (int i = 0; i < 2000; ++i) {
    all.push_back({fmt::format("k{:05}", i), std::string(100, 'v')});
  }
  ASSERT_TRUE(client_->BatchPut(all).ok());
  for (int round = 0; round < 5; ++round) {
    auto stub = v1::Kv::NewStub(grpc::CreateChannel(addr_, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    auto reader = stub->Scan(&ctx, v1::ScanRequest());
    v1::ScanResponse msg;
    ASSERT_TRUE(reader->Read(&msg));
    ctx.TryCancel();
    while (reader->Read(&msg)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  EXPECT_EQ(client_->Scan(KvScanOptions{.keys_only = true}).value().size(), 2000u);
}

}  // namespace
}  // namespace micedb::kv
