// Internal to src/frontend/resp: the state of one RESP connection, touched only by that
// connection's coroutine (and the handlers it calls), so it needs no lock.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "frontend/resp/resp_plan.h"
#include "frontend/resp/resp_writer.h"
#include "frontend/resp/scan_cursors.h"
#include "kv/backend.h"

namespace micedb::resp {

struct Session {
  explicit Session(size_t max_scan_cursors) : cursors(max_scan_cursors) {}

  uint64_t id = 0;
  std::string addr;   // client ip:port
  std::string laddr;  // our ip:port
  int64_t created_ms = 0;

  RespVersion resp = RespVersion::kResp2;
  bool authenticated = true;
  std::string name;
  std::string lib_name;
  std::string lib_version;
  kv::ReadMode read_mode = kv::ReadMode::kLinearizable;

  // MULTI ... EXEC.
  bool in_multi = false;
  bool multi_failed = false;  // a command could not be queued: EXEC answers EXECABORT
  std::vector<Plan> queued;
  size_t queued_bytes = 0;  // the queued commands' argument bytes
  // WATCH: key -> mod revision when watched (0: absent).
  std::map<std::string, uint64_t> watched;

  ScanCursors cursors;
  bool closing = false;  // QUIT: close after the reply
};

}  // namespace micedb::resp
