// A blocking loopback client for the server tests: connect, send, read.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>

namespace micedb::server::test {

class TestSocket {
 public:
  explicit TestSocket(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~TestSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  TestSocket(const TestSocket&) = delete;
  TestSocket& operator=(const TestSocket&) = delete;

  bool ok() const { return fd_ >= 0; }
  bool Send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // Reads until `until` appears in what was read, the peer closes, or `timeout_ms` passes
  // without data. Returns everything read.
  std::string Read(const std::string& until = "", int timeout_ms = 5000) {
    std::string out;
    char buf[65536];
    while (until.empty() || out.find(until) == std::string::npos) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) break;
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  // Reads one HTTP response (head plus Content-Length bytes of body; none after HEAD).
  std::string ReadHttp(bool head_only = false) {
    std::string out = Read("\r\n\r\n");
    auto end = out.find("\r\n\r\n");
    if (end == std::string::npos || head_only) return out;
    auto cl = out.find("Content-Length: ");
    if (cl == std::string::npos) return out;
    size_t want = end + 4 + std::stoul(out.substr(cl + 16));
    while (out.size() < want) {
      std::string more = Read("", 5000);
      if (more.empty()) break;
      out += more;
    }
    return out;
  }
  bool closed() const { return closed_; }

 private:
  int fd_ = -1;
  bool closed_ = false;
};

}  // namespace micedb::server::test
