// RESP keyspace commands: DEL, UNLINK, EXISTS, EXPIRE family, TTL, PTTL, PERSIST, SCAN, KEYS,
// TYPE. Relative expiry times are turned into absolute ones here, at the gateway's clock, so
// every replica applies the same instant.
#include <fmt/format.h>

#include <limits>

#include "frontend/resp/resp_handlers.h"
#include "frontend/resp/resp_render.h"
#include "kv/number.h"

namespace micedb::resp {

void HandleDel(CommandCall& call) {
  kv::Command cmd;
  for (size_t i = 1; i < call.args.size(); ++i) {
    cmd.mutable_del()->add_keys(std::move(call.args[i]));
  }
  call.Run(std::move(cmd));
}

void HandleExists(CommandCall& call) {
  kv::Command cmd;
  for (size_t i = 1; i < call.args.size(); ++i) {
    cmd.mutable_exists()->add_keys(std::move(call.args[i]));
  }
  call.Run(std::move(cmd));
}

void HandleExpire(CommandCall& call) {
  const std::string_view name = call.spec.name;
  kv::Command cmd;
  kv::ExpireAt* op = cmd.mutable_expire_at();
  for (size_t i = 3; i < call.args.size(); ++i) {
    const std::string flag = AsciiLower(call.args[i]);
    if (flag == "nx") {
      op->set_nx(true);
    } else if (flag == "xx") {
      op->set_xx(true);
    } else if (flag == "gt") {
      op->set_gt(true);
    } else if (flag == "lt") {
      op->set_lt(true);
    } else {
      call.out.Error(fmt::format("ERR Unsupported option {}", call.args[i]));
      return;
    }
  }
  if (op->nx() && (op->xx() || op->gt() || op->lt())) {
    call.out.Error("ERR NX and XX, GT or LT options at the same time are not compatible");
    return;
  }
  if (op->gt() && op->lt()) {
    call.out.Error("ERR GT and LT options at the same time are not compatible");
    return;
  }
  int64_t when = 0;
  if (!kv::ParseInt64(call.args[2], &when)) {
    call.out.Error(kErrNotInteger);
    return;
  }
  const bool seconds = name == "expire" || name == "expireat";
  const bool relative = name == "expire" || name == "pexpire";
  const std::string invalid = fmt::format("ERR invalid expire time in '{}' command", name);
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  if (seconds) {
    if (when > kMax / 1000 || when < kMin / 1000) {
      call.out.Error(invalid);
      return;
    }
    when *= 1000;
  }
  if (relative) {
    if (when > kMax - call.now_ms || when < kMin + call.now_ms) {
      call.out.Error(invalid);
      return;
    }
    when += call.now_ms;
  }
  // A time at or before 0 is in the past: the key is deleted. Stored expiries are positive.
  op->set_expire_at_ms(when <= 0 ? 1 : when);
  op->set_key(std::move(call.args[1]));
  call.Run(std::move(cmd));
}

void HandleTtl(CommandCall& call) {
  kv::Command cmd;
  cmd.mutable_ttl()->set_key(std::move(call.args[1]));
  cmd.mutable_ttl()->set_millis(call.spec.name == "pttl");
  call.Run(std::move(cmd));
}

void HandlePersist(CommandCall& call) {
  kv::Command cmd;
  cmd.mutable_persist()->set_key(std::move(call.args[1]));
  call.Run(std::move(cmd));
}

void HandleType(CommandCall& call) {
  kv::Command cmd;
  cmd.mutable_type()->set_key(std::move(call.args[1]));
  call.Run(std::move(cmd));
}

void HandleScan(CommandCall& call) {
  uint64_t cursor = 0;
  if (!kv::ParseUint64(call.args[1], &cursor)) {
    call.out.Error(kErrInvalidCursor);
    return;
  }
  kv::Command cmd;
  kv::Scan* scan = cmd.mutable_scan();
  if (cursor != 0) {
    std::optional<std::string> resume = call.session.cursors.Find(cursor);
    if (!resume.has_value()) {
      call.out.Error(kErrInvalidCursor);
      return;
    }
    scan->set_start(std::move(*resume));
  }
  int64_t count = 10;
  for (size_t i = 2; i < call.args.size(); i += 2) {
    const std::string opt = AsciiLower(call.args[i]);
    if (i + 1 >= call.args.size()) {
      call.out.Error(kErrSyntax);
      return;
    }
    const std::string& value = call.args[i + 1];
    if (opt == "count") {
      if (!kv::ParseInt64(value, &count)) {
        call.out.Error(kErrNotInteger);
        return;
      }
      if (count < 1) {
        call.out.Error(kErrSyntax);
        return;
      }
    } else if (opt == "match") {
      scan->set_match(value);
    } else if (opt == "type") {
      scan->set_type(AsciiLower(value));
    } else {
      call.out.Error(kErrSyntax);
      return;
    }
  }
  if (scan->has_match() && scan->match() == "*") scan->clear_match();
  scan->set_limit(static_cast<uint64_t>(count));
  Session* session = &call.session;
  call.Run(std::move(cmd), [session](const Result<kv::CommandResult>& result, RespWriter& out) {
    if (!result.ok() || !result->has_array() || result->array().items_size() != 2) {
      RenderResult(result, out);
      return;
    }
    const kv::CommandResult& next = result->array().items(0);
    out.ArrayHeader(2);
    out.Bulk(next.has_bulk() ? std::to_string(session->cursors.Add(next.bulk())) : "0");
    RenderValue(result->array().items(1), out);
  });
}

void HandleKeys(CommandCall& call) {
  kv::Command cmd;
  if (call.args[1] != "*") cmd.mutable_scan()->set_match(std::move(call.args[1]));
  cmd.mutable_scan()->set_limit(0);
  call.Run(std::move(cmd), [](const Result<kv::CommandResult>& result, RespWriter& out) {
    if (!result.ok() || !result->has_array() || result->array().items_size() != 2) {
      RenderResult(result, out);
      return;
    }
    RenderValue(result->array().items(1), out);
  });
}

}  // namespace micedb::resp
