#include "server/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "server/test_socket.h"

namespace micedb::server::test {
namespace {

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(size_t max_connections = 256) {
    server_.Handle("/hello", [this](const std::string& query) {
      calls_++;
      return HttpResponse{200, "text/plain", "hello " + query + "\n"};
    });
    server_.Handle("/busy", [](const std::string&) {
      return HttpResponse{503, "text/plain", "not ready\n"};
    });
    ASSERT_TRUE(server_.Start("127.0.0.1", 0, max_connections).ok());
    ASSERT_NE(server_.port(), 0);
  }
  HttpServer server_;
  std::atomic<int> calls_{0};
};

TEST_F(HttpServerTest, ServesAHandlerWithItsQueryAndKeepsTheConnection) {
  Start();
  TestSocket s(server_.port());
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s.Send("GET /hello?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string r = s.ReadHttp();
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Length: 10\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("\r\n\r\nhello a=1\n"), std::string::npos) << r;
  EXPECT_EQ(r.find("Connection: close"), std::string::npos);
  // The same connection serves the next request, and an unknown path is a 404 that keeps it.
  ASSERT_TRUE(s.Send("GET /nope HTTP/1.1\r\n\r\n"));
  r = s.ReadHttp();
  EXPECT_EQ(r.rfind("HTTP/1.1 404", 0), 0u) << r;
  ASSERT_TRUE(s.Send("GET /hello HTTP/1.1\r\n\r\n"));
  r = s.ReadHttp();
  EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;
  EXPECT_EQ(calls_.load(), 2);
}

TEST_F(HttpServerTest, AnAsyncHandlerWaitsWithoutHoldingOtherConnections) {
  HttpReply held;
  std::mutex mu;
  server_.HandleAsync("/slow", [&](const std::string& query, HttpReply reply) {
    std::lock_guard lock(mu);
    if (query == "now") return reply(HttpResponse{200, "text/plain", "at once\n"});
    held = std::move(reply);
  });
  Start();
  TestSocket slow(server_.port());
  ASSERT_TRUE(slow.Send("GET /slow HTTP/1.1\r\n\r\n"));
  // While /slow waits, another connection is served.
  TestSocket other(server_.port());
  ASSERT_TRUE(other.Send("GET /hello HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(other.ReadHttp().rfind("HTTP/1.1 200", 0), 0u);
  ASSERT_TRUE(other.Send("GET /slow?now HTTP/1.1\r\n\r\n"));
  EXPECT_NE(other.ReadHttp().find("at once"), std::string::npos);
  // The held reply comes from another thread.
  std::thread([&] {
    std::lock_guard lock(mu);
    ASSERT_TRUE(held);
    held(HttpResponse{503, "application/json", "{\"late\":1}"});
  }).join();
  std::string r = slow.ReadHttp();
  EXPECT_EQ(r.rfind("HTTP/1.1 503", 0), 0u) << r;
  EXPECT_NE(r.find("{\"late\":1}"), std::string::npos) << r;
}

TEST_F(HttpServerTest, AReplyAfterStopIsDropped) {
  HttpReply held;
  std::atomic<bool> got{false};
  server_.HandleAsync("/slow", [&](const std::string&, HttpReply reply) {
    held = std::move(reply);
    got = true;
  });
  Start();
  TestSocket slow(server_.port());
  ASSERT_TRUE(slow.Send("GET /slow HTTP/1.1\r\n\r\n"));
  for (int i = 0; i < 500 && !got; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(got.load());
  server_.Stop();
  held(HttpResponse{200, "text/plain", "too late\n"});  // no crash, nothing sent
}

TEST_F(HttpServerTest, AnAsyncHandlerThatNeverAnswersGets504AndTheConnectionGoesOn) {
  // The reply is dropped unanswered, as a callback dropped at a shutdown would be.
  server_.HandleAsync("/lost", [](const std::string&, const HttpReply&) {});
  Start();
  TestSocket s(server_.port());
  ASSERT_TRUE(s.Send("GET /lost HTTP/1.1\r\n\r\n"));
  std::string r = s.Read("in time\n", 15000);  // after the 10 s limit
  EXPECT_EQ(r.rfind("HTTP/1.1 504", 0), 0u) << r;
  ASSERT_TRUE(s.Send("GET /hello HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(s.ReadHttp().rfind("HTTP/1.1 200", 0), 0u);
}

TEST_F(HttpServerTest, HeadAnswersWithoutABody) {
  Start();
  TestSocket s(server_.port());
  ASSERT_TRUE(s.Send("HEAD /hello HTTP/1.1\r\n\r\n"));
  std::string r = s.ReadHttp(/*head_only=*/true);
  EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Length: 7\r\n"), std::string::npos) << r;
  // Nothing follows the head: the next response starts right after it.
  ASSERT_TRUE(s.Send("GET /nope HTTP/1.1\r\n\r\n"));
  std::string next = s.ReadHttp();
  EXPECT_EQ((r + next).find("hello"), std::string::npos);
  EXPECT_NE(next.find("404"), std::string::npos) << next;
}

TEST_F(HttpServerTest, OtherMethodsAndBadRequestLinesAreRefusedAndClosed) {
  Start();
  {
    TestSocket s(server_.port());
    ASSERT_TRUE(s.Send("POST /hello HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
    std::string r = s.Read();
    EXPECT_EQ(r.rfind("HTTP/1.1 405", 0), 0u) << r;
    EXPECT_NE(r.find("Connection: close"), std::string::npos);
    EXPECT_TRUE(s.closed());
  }
  {
    TestSocket s(server_.port());
    ASSERT_TRUE(s.Send("garbage\r\n\r\n"));
    std::string r = s.Read();
    EXPECT_EQ(r.rfind("HTTP/1.1 400", 0), 0u) << r;
    EXPECT_TRUE(s.closed());
  }
  EXPECT_EQ(calls_.load(), 0);
}

TEST_F(HttpServerTest, AnOversizedHeadGets431) {
  Start();
  TestSocket s(server_.port());
  std::string head = "GET /hello HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n";
  s.Send(head);  // the server may close before it has read all of it
  std::string r = s.Read();
  EXPECT_EQ(r.rfind("HTTP/1.1 431", 0), 0u) << r.substr(0, 100);
  EXPECT_EQ(calls_.load(), 0);
  // The server carries on.
  TestSocket again(server_.port());
  ASSERT_TRUE(again.Send("GET /hello HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(again.ReadHttp().rfind("HTTP/1.1 200", 0), 0u);
}

TEST_F(HttpServerTest, ConnectionsBeyondTheLimitGet503) {
  Start(/*max_connections=*/1);
  TestSocket first(server_.port());
  ASSERT_TRUE(first.Send("GET /hello HTTP/1.1\r\n\r\n"));
  ASSERT_EQ(first.ReadHttp().rfind("HTTP/1.1 200", 0), 0u);
  TestSocket second(server_.port());
  std::string r = second.Read();
  EXPECT_EQ(r.rfind("HTTP/1.1 503", 0), 0u) << r;
  EXPECT_TRUE(second.closed());
  // The first connection is still served.
  ASSERT_TRUE(first.Send("GET /hello HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(first.ReadHttp().rfind("HTTP/1.1 200", 0), 0u);
}

TEST_F(HttpServerTest, A503FromAHandlerKeepsTheConnection) {
  Start();
  TestSocket s(server_.port());
  ASSERT_TRUE(s.Send("GET /busy HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(s.ReadHttp().rfind("HTTP/1.1 503", 0), 0u);
  ASSERT_TRUE(s.Send("GET /hello HTTP/1.1\r\n\r\n"));
  EXPECT_EQ(s.ReadHttp().rfind("HTTP/1.1 200", 0), 0u);
}

TEST(HttpServerStart, AnAddressInUseIsAnErrorNamingIt) {
  HttpServer a;
  ASSERT_TRUE(a.Start("127.0.0.1", 0).ok());
  HttpServer b;
  Status st = b.Start("127.0.0.1", a.port());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_NE(st.message().find("127.0.0.1:" + std::to_string(a.port())), std::string::npos)
      << st.ToString();
  HttpServer c;
  EXPECT_EQ(c.Start("not-an-address", 0).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace micedb::server::test
