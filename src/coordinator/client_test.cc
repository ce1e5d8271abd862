#include "coordinator/client.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <optional>
#include <set>

namespace micedb::coordinator {
namespace {

// Calls wait in `sent` until the test answers them.
class FakeSender final : public CoordSender {
 public:
  struct Sent {
    NodeId to;
    CoordRequest req;
    Done done;
  };
  void Send(NodeId to, CoordRequest req, int64_t, Done done) override {
    sent.push_back(Sent{to, std::move(req), std::move(done)});
  }
  Sent Take() {
    EXPECT_FALSE(sent.empty());
    Sent s = std::move(sent.front());
    sent.pop_front();
    return s;
  }
  std::deque<Sent> sent;
};

class FakeExecutor final : public Executor {
 public:
  void After(int64_t delay_ms, std::function<void()> fn) override {
    pending.emplace_back(delay_ms, std::move(fn));
  }
  // Runs what is due after the clock moved by each one's delay.
  void RunAll(ManualClock* clock) {
    auto now = std::move(pending);
    pending.clear();
    for (auto& [delay, fn] : now) {
      clock->Advance(std::chrono::milliseconds(delay));
      fn();
    }
  }
  std::vector<std::pair<int64_t, std::function<void()>>> pending;
};

CoordResponse NotLeader(uint64_t leader) {
  CoordResponse r;
  r.mutable_error()->set_not_leader(true);
  r.mutable_error()->set_leader(leader);
  return r;
}

CoordResponse Tso(uint64_t last, uint32_t count) {
  CoordResponse r;
  r.mutable_tso()->set_last(last);
  r.mutable_tso()->set_count(count);
  return r;
}

class CoordinatorClientTest : public ::testing::Test {
 protected:
  CoordinatorClientTest() : client_(Options(&clock_), &sender_, &executor_) {
    std::vector<store::NodeAddress> m(3);
    for (int i = 0; i < 3; ++i) m[i].set_node_id(i + 1);
    client_.SetMembers(m);
  }
  static CoordinatorClientOptions Options(const Clock* clock) {
    CoordinatorClientOptions o;
    o.clock = clock;
    o.timeout_ms = 1000;
    o.backoff_ms = 20;
    return o;
  }
  ManualClock clock_;
  FakeSender sender_;
  FakeExecutor executor_;
  CoordinatorClient client_;
};

TEST_F(CoordinatorClientTest, FollowsTheLeaderHintAndRemembersIt) {
  std::optional<Result<CoordResponse>> got;
  CoordRequest req;
  req.mutable_cluster();
  client_.Call(req, [&](Result<CoordResponse> r) { got = std::move(r); });
  auto first = sender_.Take();
  first.done(NotLeader(3));
  auto second = sender_.Take();
  EXPECT_EQ(second.to, NodeId(3));
  second.done(CoordResponse());
  ASSERT_TRUE(got && got->ok());
  EXPECT_EQ(client_.leader(), NodeId(3));
  client_.Call(req, [](const Result<CoordResponse>&) {});
  EXPECT_EQ(sender_.Take().to, NodeId(3));
}

TEST_F(CoordinatorClientTest, TriesTheOtherMembersThenBacksOffAndGivesUpAtTheDeadline) {
  std::optional<Result<CoordResponse>> got;
  CoordRequest req;
  req.mutable_cluster();
  client_.Call(req, [&](Result<CoordResponse> r) { got = std::move(r); });
  std::set<uint64_t> tried;
  for (int i = 0; i < 3; ++i) {
    auto s = sender_.Take();
    tried.insert(s.to.value());
    s.done(Status::Unavailable("connection refused"));
  }
  EXPECT_EQ(tried.size(), 3u);  // every member once, without waiting
  EXPECT_TRUE(sender_.sent.empty());
  ASSERT_EQ(executor_.pending.size(), 1u);  // then a backoff
  // A retrying member keeps being asked after each backoff until the deadline.
  while (!got) {
    executor_.RunAll(&clock_);
    if (sender_.sent.empty()) break;
    CoordResponse busy;
    busy.mutable_error()->set_retry(true);
    busy.mutable_error()->set_message("warming up");
    sender_.Take().done(busy);
  }
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->status().code(), StatusCode::kUnavailable);
  EXPECT_NE(got->status().message().find("warming up"), std::string::npos);
}

TEST_F(CoordinatorClientTest, AFinalErrorComesBackAsItIs) {
  std::optional<Result<CoordResponse>> got;
  CoordRequest req;
  req.mutable_join();
  client_.Call(req, [&](Result<CoordResponse> r) { got = std::move(r); });
  CoordResponse refused;
  refused.mutable_error()->set_cluster_mismatch(true);
  refused.mutable_error()->set_message("another cluster");
  sender_.Take().done(refused);
  ASSERT_TRUE(got && got->ok());
  EXPECT_TRUE((*got)->error().cluster_mismatch());
}

TEST_F(CoordinatorClientTest, WaitingCallersAreFoldedIntoOneRequestInOrder) {
  std::vector<uint64_t> ts(10, 0);
  for (int i = 0; i < 10; ++i) {
    client_.GetTimestamp([&ts, i](Result<uint64_t> r) { ts[i] = r.ok() ? *r : 0; });
  }
  // The first caller went out alone; the nine that came meanwhile wait for it.
  ASSERT_EQ(sender_.sent.size(), 1u);
  auto first = sender_.Take();
  EXPECT_EQ(first.req.tso().count(), 1u);
  first.done(Tso(100, 1));
  EXPECT_EQ(ts[0], 100u);
  ASSERT_EQ(sender_.sent.size(), 1u);
  auto second = sender_.Take();
  EXPECT_EQ(second.req.tso().count(), 9u);
  second.done(Tso(209, 9));
  for (int i = 1; i < 10; ++i) EXPECT_EQ(ts[i], 200u + i);
  EXPECT_TRUE(sender_.sent.empty());
  EXPECT_EQ(client_.counters().tso_requests.load(), 2u);
  EXPECT_EQ(client_.counters().tso_timestamps.load(), 10u);
}

TEST_F(CoordinatorClientTest, AFailedTsoRequestFailsItsCallersAndTheNextGoOut) {
  Result<uint64_t> a = Status::Internal("unset"), b = Status::Internal("unset");
  client_.GetTimestamp([&](Result<uint64_t> r) { a = std::move(r); });
  client_.GetTimestamp([&](Result<uint64_t> r) { b = std::move(r); });
  // A short answer (fewer timestamps than callers) is not taken.
  sender_.Take().done(Tso(5, 7));
  EXPECT_FALSE(a.ok());
  sender_.Take().done(Tso(10, 1));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, 10u);
}

TEST_F(CoordinatorClientTest, ACallerAskingForSeveralGetsItsOwnConsecutiveRange) {
  uint64_t a = 0, b = 0, c = 0;
  client_.GetTimestamps(2, [&](Result<uint64_t> r) { a = r.ok() ? *r : 0; });
  client_.GetTimestamp([&](Result<uint64_t> r) { b = r.ok() ? *r : 0; });
  client_.GetTimestamps(3, [&](Result<uint64_t> r) { c = r.ok() ? *r : 0; });
  auto first = sender_.Take();
  EXPECT_EQ(first.req.tso().count(), 2u);
  first.done(Tso(101, 2));  // 100 and 101
  EXPECT_EQ(a, 100u);
  auto second = sender_.Take();
  EXPECT_EQ(second.req.tso().count(), 4u);
  second.done(Tso(203, 4));  // 200..203: one for b, three for c
  EXPECT_EQ(b, 200u);
  EXPECT_EQ(c, 201u);
  EXPECT_EQ(client_.counters().tso_timestamps.load(), 6u);
  Result<uint64_t> none = uint64_t{1};
  client_.GetTimestamps(0, [&](Result<uint64_t> r) { none = std::move(r); });
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(sender_.sent.empty());
}

}  // namespace
}  // namespace micedb::coordinator
