// `micedb cert create-ca | create-node | create-client | list` (docs/security.md), and the
// credentials the command line's own gRPC clients (node, status, kv) use.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <CLI/CLI.hpp>

#include "common/result.h"
#include "security/certs.h"

namespace micedb::cli {

struct CertCommandOptions {
  std::string op;  // set by the subcommand chosen
  security::CertOptions cert;
  std::vector<std::string> hosts;  // create-node
  std::string user;                // create-client
};

// Adds `cert` and its subcommands to `app`; returns the `cert` command.
CLI::App* AddCertCommand(CLI::App* app, CertCommandOptions* opts);
int RunCert(const CertCommandOptions& opts);

// Where the command line finds its certificates: --certs-dir (or MICEDB_CERTS_DIR) and the
// user whose client certificate it presents.
struct ClientSecurity {
  std::string certs_dir;  // empty: plain connections (a cluster started with --insecure)
  std::string user = "root";
};
void AddClientSecurityFlags(CLI::App* cmd, ClientSecurity* s);
// The gRPC credentials for `s`: TLS with client.<user>.crt/.key and ca.crt, or insecure.
// Errors: a certificate file that cannot be read, named.
Result<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(const ClientSecurity& s);

}  // namespace micedb::cli
