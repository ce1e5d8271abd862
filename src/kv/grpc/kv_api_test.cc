// KvApi without a network: what each request becomes as a kv Command, what bad input is
// refused before reaching the backend, and how results and backend errors come back.
#include "kv/grpc/kv_api.h"

#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

#include "kv/command_result.h"

namespace micedb::kv {
namespace {

// Records every command and answers each with the next canned result, at once.
class FakeBackend final : public KvBackend {
 public:
  void Execute(Command cmd, ReadMode mode, Callback done) override {
    commands.push_back(std::move(cmd));
    modes.push_back(mode);
    if (answers.empty()) {
      return done(Status::Internal("no canned answer"));
    }
    Result<CommandResult> answer = std::move(answers.front());
    answers.pop_front();
    done(std::move(answer));
  }

  std::vector<Command> commands;
  std::vector<ReadMode> modes;
  std::deque<Result<CommandResult>> answers;
};

CommandResult Array(std::vector<CommandResult> items) {
  CommandResult r = ArrayResult();
  for (auto& item : items) {
    *r.mutable_array()->add_items() = std::move(item);
  }
  return r;
}

class KvApiTest : public ::testing::Test {
 protected:
  // Runs one KvApi method; the fake answers synchronously, so the status is known on return.
  template <typename Req, typename Resp>
  Status Call(void (KvApi::*method)(const Req&, Resp*, KvApi::Done) const, const Req& req,
              Resp* resp) {
    Status out = Status::Internal("done not called");
    (api_.*method)(req, resp, [&out](Status st) { out = std::move(st); });
    return out;
  }

  ManualClock clock_;
  FakeBackend backend_;
  KvApi api_{&backend_,
             KvApiOptions{
                 .max_key_bytes = 8, .max_value_bytes = 16, .max_batch_keys = 3, .clock = &clock_}};
};

TEST_F(KvApiTest, GetBecomesGetCommandAtWallClock) {
  backend_.answers.push_back(BulkResult("v"));
  backend_.answers.push_back(NilResult());
  v1::GetRequest req;
  req.set_key("k");
  v1::GetResponse resp;
  ASSERT_TRUE(Call(&KvApi::Get, req, &resp).ok());
  EXPECT_TRUE(resp.found());
  EXPECT_EQ(resp.value(), "v");

  req.set_consistency(v1::LOCAL_STALE);
  resp.Clear();
  ASSERT_TRUE(Call(&KvApi::Get, req, &resp).ok());
  EXPECT_FALSE(resp.found());
  EXPECT_EQ(resp.value(), "");

  ASSERT_EQ(backend_.commands.size(), 2u);
  EXPECT_EQ(backend_.commands[0].get().key(), "k");
  EXPECT_EQ(backend_.commands[0].now_ms(), clock_.NowWallMillis());
  EXPECT_EQ(backend_.modes[0], ReadMode::kLinearizable);
  EXPECT_EQ(backend_.modes[1], ReadMode::kLocalStale);
}

TEST_F(KvApiTest, BadKeysNeverReachTheBackend) {
  v1::GetRequest req;
  v1::GetResponse resp;
  Status st = Call(&KvApi::Get, req, &resp);
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_EQ(st.message(), "key is empty");

  req.set_key(std::string(9, 'k'));
  st = Call(&KvApi::Get, req, &resp);
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_EQ(st.message(), "key is 9 bytes, longer than the limit of 8");

  req.set_key("k");
  req.set_consistency(static_cast<v1::ReadConsistency>(7));
  st = Call(&KvApi::Get, req, &resp);
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_EQ(st.message(), "unknown read consistency 7");
  EXPECT_TRUE(backend_.commands.empty());

  // Exactly at the limit is fine.
  backend_.answers.push_back(NilResult());
  req.set_key(std::string(8, 'k'));
  req.set_consistency(v1::LINEARIZABLE);
  EXPECT_TRUE(Call(&KvApi::Get, req, &resp).ok());
}

TEST_F(KvApiTest, DefaultLimitsAreTheIssueLimits) {
  KvApiOptions defaults;
  EXPECT_EQ(defaults.max_key_bytes, 64u * 1024);
  EXPECT_EQ(defaults.max_value_bytes, 64u * 1024 * 1024);
  EXPECT_EQ(defaults.max_scan_limit, 100000u);
}

TEST_F(KvApiTest, PutTurnsTtlIntoAnAbsoluteExpiry) {
  backend_.answers.push_back(OkResult());
  backend_.answers.push_back(OkResult());
  v1::PutRequest req;
  req.set_key("k");
  req.set_value("v");
  v1::PutResponse resp;
  ASSERT_TRUE(Call(&KvApi::Put, req, &resp).ok());
  req.set_ttl_ms(1500);
  ASSERT_TRUE(Call(&KvApi::Put, req, &resp).ok());
  ASSERT_EQ(backend_.commands.size(), 2u);
  const Set& plain = backend_.commands[0].set();
  EXPECT_EQ(plain.key(), "k");
  EXPECT_EQ(plain.value(), "v");
  EXPECT_EQ(plain.expire_at_ms(), 0);
  EXPECT_EQ(plain.condition(), SET_ALWAYS);
  EXPECT_EQ(backend_.commands[1].set().expire_at_ms(), clock_.NowWallMillis() + 1500);
}

TEST_F(KvApiTest, PutRefusesBadValuesAndTtls) {
  v1::PutRequest req;
  req.set_key("k");
  req.set_value(std::string(17, 'v'));
  v1::PutResponse resp;
  Status st = Call(&KvApi::Put, req, &resp);
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_EQ(st.message(), "value is 17 bytes, longer than the limit of 16");

  req.set_value("v");
  req.set_ttl_ms(-1);
  st = Call(&KvApi::Put, req, &resp);
  EXPECT_EQ(st.message(), "ttl_ms is negative: -1");
  req.set_ttl_ms(INT64_MAX);
  st = Call(&KvApi::Put, req, &resp);
  EXPECT_TRUE(st.IsInvalidArgument());
  EXPECT_TRUE(backend_.commands.empty());
}

TEST_F(KvApiTest, DeleteCountsExistingKeys) {
  backend_.answers.push_back(IntResult(1));
  v1::DeleteRequest req;
  req.add_keys("a");
  req.add_keys("b");
  v1::DeleteResponse resp;
  ASSERT_TRUE(Call(&KvApi::Delete, req, &resp).ok());
  EXPECT_EQ(resp.deleted(), 1u);
  ASSERT_EQ(backend_.commands.size(), 1u);
  ASSERT_EQ(backend_.commands[0].del().keys_size(), 2);
  EXPECT_EQ(backend_.commands[0].del().keys(1), "b");

  // Nothing to delete: answered without the backend.
  req.Clear();
  ASSERT_TRUE(Call(&KvApi::Delete, req, &resp).ok());
  EXPECT_EQ(resp.deleted(), 0u);
  EXPECT_EQ(backend_.commands.size(), 1u);
}

TEST_F(KvApiTest, BatchesAreCheckedItemByItem) {
  v1::DeleteRequest del;
  del.add_keys("a");
  del.add_keys("");
  v1::DeleteResponse del_resp;
  EXPECT_EQ(Call(&KvApi::Delete, del, &del_resp).message(), "keys[1] is empty");

  v1::BatchGetRequest get;
  for (int i = 0; i < 4; ++i) {
    get.add_keys("k");
  }
  v1::BatchGetResponse get_resp;
  EXPECT_EQ(Call(&KvApi::BatchGet, get, &get_resp).message(), "too many keys: 4 (at most 3)");

  v1::BatchPutRequest put;
  put.add_pairs()->set_key("a");
  v1::KeyValue* big = put.add_pairs();
  big->set_key("b");
  big->set_value(std::string(17, 'v'));
  v1::BatchPutResponse put_resp;
  EXPECT_EQ(Call(&KvApi::BatchPut, put, &put_resp).message(),
            "pairs[1].value is 17 bytes, longer than the limit of 16");
  EXPECT_TRUE(backend_.commands.empty());
}

TEST_F(KvApiTest, BatchGetKeepsRequestOrder) {
  backend_.answers.push_back(Array({BulkResult("1"), NilResult(), BulkResult("")}));
  v1::BatchGetRequest req;
  req.add_keys("a");
  req.add_keys("b");
  req.add_keys("c");
  v1::BatchGetResponse resp;
  ASSERT_TRUE(Call(&KvApi::BatchGet, req, &resp).ok());
  EXPECT_EQ(backend_.commands[0].mget().keys_size(), 3);
  ASSERT_EQ(resp.items_size(), 3);
  EXPECT_EQ(resp.items(0).key(), "a");
  EXPECT_TRUE(resp.items(0).found());
  EXPECT_EQ(resp.items(0).value(), "1");
  EXPECT_FALSE(resp.items(1).found());
  EXPECT_TRUE(resp.items(2).found());  // an empty value is still a value
  EXPECT_EQ(resp.items(2).value(), "");
}

TEST_F(KvApiTest, BatchPutBecomesOneMSet) {
  backend_.answers.push_back(OkResult());
  v1::BatchPutRequest req;
  for (const char* k : {"x", "y"}) {
    v1::KeyValue* p = req.add_pairs();
    p->set_key(k);
    p->set_value(std::string(k) + "!");
  }
  v1::BatchPutResponse resp;
  ASSERT_TRUE(Call(&KvApi::BatchPut, req, &resp).ok());
  const MSet& mset = backend_.commands[0].mset();
  ASSERT_EQ(mset.pairs_size(), 2);
  EXPECT_EQ(mset.pairs(1).key(), "y");
  EXPECT_EQ(mset.pairs(1).value(), "y!");
}

TEST_F(KvApiTest, CompareAndSwapBothWays) {
  backend_.answers.push_back(Array({IntResult(1), NilResult()}));
  backend_.answers.push_back(Array({IntResult(0), BulkResult("now")}));
  v1::CompareAndSwapRequest req;
  req.set_key("k");
  req.set_expect_absent(true);
  req.set_new_value("first");
  v1::CompareAndSwapResponse resp;
  ASSERT_TRUE(Call(&KvApi::CompareAndSwap, req, &resp).ok());
  EXPECT_TRUE(resp.succeeded());
  EXPECT_FALSE(resp.found());

  req.set_expected_value("old");
  req.set_delete_key(true);
  ASSERT_TRUE(Call(&KvApi::CompareAndSwap, req, &resp).ok());
  EXPECT_FALSE(resp.succeeded());
  EXPECT_TRUE(resp.found());
  EXPECT_EQ(resp.current_value(), "now");

  const auto& first = backend_.commands[0].compare_and_swap();
  EXPECT_TRUE(first.expect_absent());
  EXPECT_EQ(first.new_value(), "first");
  EXPECT_FALSE(first.delete_key());
  const auto& second = backend_.commands[1].compare_and_swap();
  EXPECT_EQ(second.expected_value(), "old");
  EXPECT_TRUE(second.delete_key());
}

TEST_F(KvApiTest, CompareAndSwapNeedsAnExpectation) {
  v1::CompareAndSwapRequest req;
  req.set_key("k");
  v1::CompareAndSwapResponse resp;
  EXPECT_EQ(Call(&KvApi::CompareAndSwap, req, &resp).message(),
            "set either expected_value or expect_absent");
  req.set_expect_absent(false);
  EXPECT_EQ(Call(&KvApi::CompareAndSwap, req, &resp).message(),
            "expect_absent must be true when set");
  EXPECT_TRUE(backend_.commands.empty());
}

TEST_F(KvApiTest, BackendFailuresPassThrough) {
  backend_.answers.push_back(Status::Unavailable("no leader"));
  backend_.answers.push_back(Status::TimedOut("slow"));
  backend_.answers.push_back(
      ErrorResult(KvError::VALUE_TOO_BIG, "value would exceed the limit of 8 bytes"));
  backend_.answers.push_back(IntResult(3));  // not what a Get returns
  v1::GetRequest req;
  req.set_key("k");
  v1::GetResponse resp;
  EXPECT_EQ(Call(&KvApi::Get, req, &resp).code(), StatusCode::kUnavailable);
  EXPECT_EQ(Call(&KvApi::Get, req, &resp).code(), StatusCode::kTimedOut);
  Status refused = Call(&KvApi::Get, req, &resp);
  EXPECT_TRUE(refused.IsInvalidArgument());
  EXPECT_EQ(refused.message(), "value would exceed the limit of 8 bytes");
  EXPECT_EQ(Call(&KvApi::Get, req, &resp).code(), StatusCode::kInternal);
}

TEST(KvErrorStatusTest, RequestErrorsAreInvalidArgumentTheRestInternal) {
  KvError e;
  e.set_message("why");
  for (KvError::Code code : {KvError::NOT_INTEGER, KvError::INTEGER_OVERFLOW,
                             KvError::VALUE_TOO_BIG, KvError::INVALID_ARGUMENT}) {
    e.set_code(code);
    EXPECT_TRUE(KvErrorStatus(e).IsInvalidArgument()) << e.code();
    EXPECT_EQ(KvErrorStatus(e).message(), "why");
  }
  for (KvError::Code code : {KvError::NESTED_TXN, KvError::WRITE_ON_READ_PATH,
                             KvError::EMPTY_COMMAND, KvError::INTERNAL}) {
    e.set_code(code);
    EXPECT_EQ(KvErrorStatus(e).code(), StatusCode::kInternal) << e.code();
  }
}

}  // namespace
}  // namespace micedb::kv
