// TxnGrpcService over a real TxnClient on FakeRegions (two regions, cut at "m"), through
// TxnGrpcClient and the raw stub: one-shot writes (a Commit with mutations and txn_id 0) seen
// whole by later transactions, and the Commits it refuses -- txn_id with mutations, neither,
// more mutations or bytes than the limits, a DELETE with a value, an unknown op -- each
// definite (InvalidArgument) and writing nothing.
#include "txn/grpc/service.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "router/thread_executor.h"
#include "txn/fake_regions.h"
#include "txn/grpc/client.h"

namespace micedb::txn {
namespace {

using testing::FakeRegions;
using Mutation = TxnGrpcClient::Mutation;

Mutation Put(std::string key, std::string value) {
  return {Mutation::Op::kPut, std::move(key), std::move(value)};
}
Mutation Del(std::string key) { return {Mutation::Op::kDelete, std::move(key), ""}; }

class TxnGrpcServiceTest : public ::testing::Test {
 protected:
  TxnGrpcServiceTest()
      : regions_({"m"}),
        client_(&regions_, &executor_, &clock_),
        service_(&client_, &clock_, Options()) {}

  // Small limits, so that tests can pass them.
  static TxnServiceOptions Options() {
    TxnServiceOptions o;
    o.max_batch_keys = 8;
    o.max_key_bytes = 64;
    o.max_value_bytes = 600;
    o.max_txn_bytes = 1000;
    return o;
  }

  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(port, 0);
    const std::string addr = fmt::format("127.0.0.1:{}", port);
    client_grpc_ = std::make_unique<TxnGrpcClient>(
        addr, TxnGrpcClientOptions{.timeout = std::chrono::seconds(10), .credentials = nullptr});
    stub_ = v1::Txn::NewStub(grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  grpc::Status RawCommit(const v1::CommitRequest& req) {
    grpc::ClientContext ctx;
    v1::CommitResponse resp;
    return stub_->Commit(&ctx, req, &resp);
  }

  // The values of `keys` in a fresh snapshot.
  TxnGrpcClient::Pairs Read(const std::vector<std::string>& keys) {
    auto h = client_grpc_->Begin();
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    if (!h.ok()) return {};
    auto pairs = client_grpc_->BatchGet(h->id, keys);
    EXPECT_TRUE(pairs.ok()) << pairs.status().ToString();
    EXPECT_TRUE(client_grpc_->Rollback(h->id).ok());
    return pairs.ok() ? *pairs : TxnGrpcClient::Pairs{};
  }

  SystemClock clock_;
  router::ThreadExecutor executor_;
  FakeRegions regions_;
  TxnClient client_;
  TxnGrpcService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<TxnGrpcClient> client_grpc_;
  std::unique_ptr<v1::Txn::Stub> stub_;
};

TEST_F(TxnGrpcServiceTest, OneShotWritesAcrossRegionsAreSeenByLaterTransactions) {
  auto first = client_grpc_->Write({Put("gone", "x")});
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // Both regions, a key written twice (the later wins) and a delete.
  auto second =
      client_grpc_->Write({Put("apple", "1"), Put("zebra", "2"), Put("apple", "3"), Del("gone")});
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_GT(*second, *first);
  EXPECT_EQ(Read({"apple", "zebra", "gone"}),
            (TxnGrpcClient::Pairs{{"apple", "3"}, {"zebra", "2"}}));
  EXPECT_EQ(client_.counters().committed.load(), 2u);
}

TEST_F(TxnGrpcServiceTest, ACommitNamesATransactionOrCarriesMutationsNotBoth) {
  auto h = client_grpc_->Begin();
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  ASSERT_TRUE(client_grpc_->Put(h->id, "kiwi", "open").ok());

  v1::CommitRequest both;
  both.set_txn_id(h->id);
  v1::Mutation* m = both.add_mutations();
  m->set_key("kiwi");
  m->set_value("oneshot");
  grpc::Status st = RawCommit(both);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_NE(st.error_message().find("not both"), std::string::npos) << st.error_message();

  st = RawCommit(v1::CommitRequest());
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_TRUE(client_grpc_->Write({}).status().IsInvalidArgument());

  // The open transaction was left alone: it commits what it buffered, not the mutation.
  ASSERT_TRUE(client_grpc_->Commit(h->id).ok());
  EXPECT_EQ(Read({"kiwi"}), (TxnGrpcClient::Pairs{{"kiwi", "open"}}));
}

TEST_F(TxnGrpcServiceTest, MutationsAreHeldToTheLimitsOfPutAndDelete) {
  auto refused = [&](const std::vector<Mutation>& ms, const std::string& words) {
    auto r = client_grpc_->Write(ms);
    ASSERT_FALSE(r.ok());
    // Definite: the client does not take it for an unknown outcome.
    EXPECT_TRUE(r.status().IsInvalidArgument()) << r.status().ToString();
    EXPECT_NE(r.status().message().find(words), std::string::npos) << r.status().ToString();
  };
  std::vector<Mutation> nine;
  nine.reserve(9);
  for (int i = 0; i < 9; ++i) nine.push_back(Put(fmt::format("k{}", i), "v"));
  refused(nine, "9 mutations in one Commit; at most 8");
  refused({Put(std::string(65, 'k'), "v")}, "key of 65 bytes; at most 64");
  refused({Del(std::string(65, 'k'))}, "key of 65 bytes; at most 64");
  refused({Put("big", std::string(601, 'v'))}, "value of 601 bytes; at most 600");
  // Each value fits; together they pass --max-txn-bytes.
  refused({Put("a", std::string(500, 'v')), Put("b", std::string(500, 'v'))},
          "1002 bytes of keys and values; one transaction may write at most 1000");

  v1::CommitRequest del_with_value;
  v1::Mutation* m = del_with_value.add_mutations();
  m->set_op(v1::Mutation::DELETE);
  m->set_key("a");
  m->set_value("v");
  EXPECT_EQ(RawCommit(del_with_value).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::CommitRequest unknown_op;
  m = unknown_op.add_mutations();
  m->set_op(static_cast<v1::Mutation::Op>(7));
  m->set_key("a");
  EXPECT_EQ(RawCommit(unknown_op).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // Nothing of them was written; the most that fits passes.
  EXPECT_EQ(Read({"k0", "big", "a", "b"}), TxnGrpcClient::Pairs{});
  std::vector<Mutation> eight;
  eight.reserve(8);
  for (int i = 0; i < 8; ++i) eight.push_back(Put(fmt::format("k{}", i), std::string(100, 'v')));
  EXPECT_TRUE(client_grpc_->Write(eight).ok());
  EXPECT_EQ(client_.counters().committed.load(), 1u);
}

}  // namespace
}  // namespace micedb::txn
