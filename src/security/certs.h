// The cluster's certificates (docs/security.md): one cluster CA signs a certificate for the
// nodes and one per client user. `micedb cert` writes them into a certificates directory laid
// out as the node and the command line read it:
//
//   ca.crt                      the CA's certificate (every node and client has it)
//   node.crt, node.key          a node's certificate: CN "node", the hosts it serves as
//                               subject alternative names (plus the DNS name "node", which
//                               nodes verify each other by), server and client use
//   client.<user>.crt/.key      a client's certificate: CN <user>, client use only
//
// The CA's key lives wherever --ca-key says (keep it off the nodes). Keys are EC P-256,
// written with mode 0600.
#pragma once

#include <string>
#include <vector>

#include "common/result.h"
#include "common/status.h"

namespace micedb::security {

struct CertOptions {
  std::string certs_dir;   // where certificates go (created if absent)
  std::string ca_key;      // the CA's private key file
  int lifetime_days = 0;   // 0: the default for the kind (CA 10 years, others 5)
  bool overwrite = false;  // replace files that exist (otherwise an error names them)
};

// Creates the CA: ca.crt in certs_dir and its key at ca_key.
Status CreateCa(const CertOptions& opts);
// Creates node.crt/node.key, signed by the CA, for `hosts` (IP addresses or DNS names; at
// least one).
Status CreateNode(const CertOptions& opts, const std::vector<std::string>& hosts);
// Creates client.<user>.crt/.key, signed by the CA. `user`: letters, digits, '_', '-', '.'.
Status CreateClient(const CertOptions& opts, const std::string& user);

// What a certificate file says, for `micedb cert list` and tests.
struct CertInfo {
  std::string common_name;
  std::vector<std::string> hosts;  // subject alternative names (DNS names and IPs)
  bool is_ca = false;
  std::string not_after;  // as OpenSSL prints it
};
Result<CertInfo> ReadCertInfo(const std::string& path);

// The conventional file names inside a certificates directory.
std::string CaCertPath(const std::string& dir);
std::string NodeCertPath(const std::string& dir);
std::string NodeKeyPath(const std::string& dir);
std::string ClientCertPath(const std::string& dir, const std::string& user);
std::string ClientKeyPath(const std::string& dir, const std::string& user);

// The name nodes' certificates carry so that nodes can verify each other whatever address
// they use (gRPC's target name between nodes).
inline constexpr const char* kNodeName = "node";

}  // namespace micedb::security
