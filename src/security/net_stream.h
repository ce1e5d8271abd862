// NetStream: a TCP connection that is either plain or TLS, with the asio stream operations
// the servers and transports use, so their code is the same for both.
//
// Thread-safety: as asio's sockets (one thread, or one strand, at a time).
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <memory>
#include <utility>

namespace micedb::security {

class NetStream {
 public:
  using Socket = asio::ip::tcp::socket;
  using TlsStream = asio::ssl::stream<Socket>;
  using executor_type = Socket::executor_type;

  // A plain connection.
  explicit NetStream(Socket socket) : plain_(std::move(socket)) {}
  // A TLS connection over `socket` (the handshake is still to be done) with `ctx`, which
  // must outlive the stream.
  NetStream(Socket socket, asio::ssl::context& ctx)
      : plain_(socket.get_executor()), tls_(std::make_unique<TlsStream>(std::move(socket), ctx)) {}

  bool tls() const { return tls_ != nullptr; }
  // The TLS stream (null when plain), for handshakes and SSL_* queries.
  TlsStream* tls_stream() { return tls_.get(); }
  SSL* ssl() { return tls_ ? tls_->native_handle() : nullptr; }
  // The TCP socket under it all.
  Socket& socket() { return tls_ ? tls_->next_layer() : plain_; }
  executor_type get_executor() { return plain_.get_executor(); }

  template <typename Buffers, typename Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    if (tls_) return tls_->async_read_some(buffers, std::forward<Token>(token));
    return plain_.async_read_some(buffers, std::forward<Token>(token));
  }
  template <typename Buffers, typename Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    if (tls_) return tls_->async_write_some(buffers, std::forward<Token>(token));
    return plain_.async_write_some(buffers, std::forward<Token>(token));
  }

  template <typename Buffers>
  size_t write_some(const Buffers& buffers, asio::error_code& ec) {
    return tls_ ? tls_->write_some(buffers, ec) : plain_.write_some(buffers, ec);
  }
  template <typename Buffers>
  size_t write_some(const Buffers& buffers) {
    return tls_ ? tls_->write_some(buffers) : plain_.write_some(buffers);
  }

  // Closes the TCP socket (no TLS close_notify: callers that want one shut down first).
  void close() {
    asio::error_code ignored;
    socket().shutdown(Socket::shutdown_both, ignored);
    socket().close(ignored);
  }

 private:
  Socket plain_;  // the connection when plain; unused (never opened) under TLS
  std::unique_ptr<TlsStream> tls_;
};

}  // namespace micedb::security
