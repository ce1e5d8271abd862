// ClientRegistry: the open RESP connections of a server, for CLIENT LIST / INFO, INFO clients,
// the connection limit and shutdown. Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/thread_annotations.h"

namespace micedb::resp {

// What CLIENT LIST shows about a connection. Written by the connection's own thread after
// each command, read by others, under `mu`.
struct ClientInfo {
  uint64_t id = 0;
  std::string addr;
  std::string laddr;
  int64_t created_ms = 0;
  int64_t last_active_ms = 0;
  std::string name;
  std::string lib_name;
  std::string lib_version;
  std::string last_command;  // "get", "client|list"
  int resp = 2;
  int multi = -1;  // queued commands in MULTI, -1 outside
  size_t watched = 0;
  size_t query_buffer = 0;
  bool readonly = false;
};

class ClientRegistry {
 public:
  struct Client {
    mutable std::mutex mu;
    ClientInfo info;             // guarded by mu
    std::function<void()> kill;  // closes the connection; callable from any thread
  };

  explicit ClientRegistry(size_t max_clients) : max_clients_(max_clients) {}

  // A new client with a fresh id, or null when max_clients are already registered.
  std::shared_ptr<Client> Register(ClientInfo info, std::function<void()> kill) EXCLUDES(mu_);
  void Unregister(uint64_t id) EXCLUDES(mu_);

  size_t size() const EXCLUDES(mu_);
  size_t max_clients() const { return max_clients_; }
  // Copies of every client's info, by id.
  std::vector<ClientInfo> List() const EXCLUDES(mu_);
  // Calls every client's kill function (outside the lock).
  void KillAll() EXCLUDES(mu_);

 private:
  const size_t max_clients_;
  mutable std::mutex mu_;
  uint64_t next_id_ GUARDED_BY(mu_) = 1;
  std::map<uint64_t, std::shared_ptr<Client>> clients_ GUARDED_BY(mu_);
};

// One line of CLIENT LIST / CLIENT INFO (ending in "\n"), in Redis's field order, at `now_ms`.
std::string FormatClientLine(const ClientInfo& info, int64_t now_ms);

}  // namespace micedb::resp
