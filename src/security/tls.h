// TLS for the peer port and the client ports (docs/security.md), over asio::ssl (OpenSSL).
//
// The peer port is mutual TLS from the cluster CA: every connection must present a
// certificate the CA signed. The protocol is chosen by ALPN: "micedb-raft" for raft streams
// (only node certificates: CN "node"), "h2" for the gRPC services (node or client
// certificates). The Redis TLS port verifies clients as --redis-tls-auth-clients says.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "common/status.h"

namespace micedb::security {

inline constexpr std::string_view kAlpnRaft = "micedb-raft";
inline constexpr std::string_view kAlpnGrpc = "h2";

// The files one side of a connection uses.
struct TlsFiles {
  std::string ca;    // CA certificate(s) that sign the other side
  std::string cert;  // our certificate chain
  std::string key;   // our private key
};
// A node's files in a certificates directory (security/certs.h).
TlsFiles NodeFiles(const std::string& certs_dir);
// A client user's files.
TlsFiles ClientFiles(const std::string& certs_dir, const std::string& user);

enum class ClientAuth { kRequire, kOptional, kNone };

// A server context: our certificate and key, the CA that clients must be signed by, and the
// ALPN protocols we speak (in our order of preference; empty: no ALPN). Errors name the file
// that could not be used.
Result<std::shared_ptr<asio::ssl::context>> MakeServerContext(const TlsFiles& files,
                                                              ClientAuth auth,
                                                              std::vector<std::string> alpn);
// A client context that presents our certificate, verifies the server's against the CA and
// offers `alpn` (empty: none). Host names are not checked here: callers check the peer's
// name (PeerCommonName) as their protocol needs.
Result<std::shared_ptr<asio::ssl::context>> MakeClientContext(const TlsFiles& files,
                                                              std::string_view alpn);

// The protocol ALPN chose on a connection ("" when none).
std::string SelectedAlpn(SSL* ssl);
// The common name of the verified peer certificate ("" when the peer sent none).
std::string PeerCommonName(SSL* ssl);

// The PEM text of a file, for gRPC's credentials.
Result<std::string> ReadPem(const std::string& path);

}  // namespace micedb::security
