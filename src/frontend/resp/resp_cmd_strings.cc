// RESP string commands: GET, SET, GETSET, SETNX, MGET, MSET, MSETNX, INCR/DECR[BY], APPEND,
// STRLEN, GETRANGE. Argument errors use Redis's texts; the work is a kv Command.
#include <limits>

#include "frontend/resp/resp_handlers.h"
#include "frontend/resp/resp_render.h"
#include "kv/number.h"

namespace micedb::resp {
namespace {

// SET's options after the value, checked the way Redis checks them: all flags first
// (conflicts are syntax errors), then the expiry number.
struct SetOptions {
  bool nx = false;
  bool xx = false;
  bool get = false;
  bool keep_ttl = false;
  enum class Unit { kNone, kEx, kPx, kExAt, kPxAt } unit = Unit::kNone;
  std::string_view expire_arg;
};

bool ParseSetOptions(const std::vector<std::string>& args, size_t first, SetOptions* o) {
  for (size_t i = first; i < args.size(); ++i) {
    const std::string opt = AsciiLower(args[i]);
    if (opt == "nx" && !o->xx) {
      o->nx = true;
    } else if (opt == "xx" && !o->nx) {
      o->xx = true;
    } else if (opt == "get") {
      o->get = true;
    } else if (opt == "keepttl" && o->unit == SetOptions::Unit::kNone) {
      o->keep_ttl = true;
    } else if ((opt == "ex" || opt == "px" || opt == "exat" || opt == "pxat") && !o->keep_ttl &&
               o->unit == SetOptions::Unit::kNone && i + 1 < args.size()) {
      o->unit = opt == "ex"     ? SetOptions::Unit::kEx
                : opt == "px"   ? SetOptions::Unit::kPx
                : opt == "exat" ? SetOptions::Unit::kExAt
                                : SetOptions::Unit::kPxAt;
      o->expire_arg = args[++i];
    } else {
      return false;
    }
  }
  return true;
}

// The absolute expiry in ms for SET's option, or an error text.
bool SetExpireAt(const SetOptions& o, int64_t now_ms, int64_t* at, const char** error) {
  int64_t n = 0;
  if (!kv::ParseInt64(o.expire_arg, &n)) {
    *error = kErrNotInteger;
    return false;
  }
  static constexpr char kInvalid[] = "ERR invalid expire time in 'set' command";
  const bool seconds = o.unit == SetOptions::Unit::kEx || o.unit == SetOptions::Unit::kExAt;
  const bool relative = o.unit == SetOptions::Unit::kEx || o.unit == SetOptions::Unit::kPx;
  if (n <= 0 || (seconds && n > std::numeric_limits<int64_t>::max() / 1000)) {
    *error = kInvalid;
    return false;
  }
  int64_t ms = seconds ? n * 1000 : n;
  if (relative) {
    if (ms > std::numeric_limits<int64_t>::max() - now_ms) {
      *error = kInvalid;
      return false;
    }
    ms += now_ms;
  }
  *at = ms;
  return true;
}

// Renders a GET-like result and counts keyspace hits and misses.
Renderer CountingRender(ServerStats* stats) {
  return [stats](const Result<kv::CommandResult>& result, RespWriter& out) {
    if (result.ok()) {
      if (result->has_nil()) {
        stats->keyspace_misses.fetch_add(1, std::memory_order_relaxed);
      } else if (result->has_bulk()) {
        stats->keyspace_hits.fetch_add(1, std::memory_order_relaxed);
      }
    }
    RenderResult(result, out);
  };
}

void RunSet(CommandCall& call, std::string key, std::string value, const SetOptions& o) {
  kv::Command cmd;
  kv::Set* set = cmd.mutable_set();
  if (o.unit != SetOptions::Unit::kNone) {
    int64_t at = 0;
    const char* error = nullptr;
    if (!SetExpireAt(o, call.now_ms, &at, &error)) {
      call.out.Error(error);
      return;
    }
    set->set_expire_at_ms(at);
  }
  set->set_key(std::move(key));
  set->set_value(std::move(value));
  set->set_condition(o.nx ? kv::SET_IF_ABSENT : o.xx ? kv::SET_IF_PRESENT : kv::SET_ALWAYS);
  set->set_return_old(o.get);
  set->set_keep_ttl(o.keep_ttl);
  call.Run(std::move(cmd));
}

}  // namespace

void HandleGet(CommandCall& call) {
  kv::Command cmd;
  cmd.mutable_get()->set_key(std::move(call.args[1]));
  call.Run(std::move(cmd), CountingRender(call.server.stats));
}

void HandleSet(CommandCall& call) {
  SetOptions o;
  if (!ParseSetOptions(call.args, 3, &o)) {
    call.out.Error(kErrSyntax);
    return;
  }
  RunSet(call, std::move(call.args[1]), std::move(call.args[2]), o);
}

void HandleGetSet(CommandCall& call) {
  SetOptions o;
  o.get = true;
  RunSet(call, std::move(call.args[1]), std::move(call.args[2]), o);
}

void HandleSetNx(CommandCall& call) {
  kv::Command cmd;
  kv::Set* set = cmd.mutable_set();
  set->set_key(std::move(call.args[1]));
  set->set_value(std::move(call.args[2]));
  set->set_condition(kv::SET_IF_ABSENT);
  call.Run(std::move(cmd), [](const Result<kv::CommandResult>& result, RespWriter& out) {
    if (result.ok() && (result->has_ok() || result->has_nil())) {
      out.Integer(result->has_ok() ? 1 : 0);
    } else {
      RenderResult(result, out);
    }
  });
}

void HandleMGet(CommandCall& call) {
  kv::Command cmd;
  for (size_t i = 1; i < call.args.size(); ++i) {
    cmd.mutable_mget()->add_keys(std::move(call.args[i]));
  }
  call.Run(std::move(cmd));
}

namespace {

template <typename Op>
bool FillPairs(CommandCall& call, Op* op) {
  if (call.args.size() % 2 != 1) {
    call.out.Error(WrongArityError(call.spec.name));
    return false;
  }
  for (size_t i = 1; i + 1 < call.args.size(); i += 2) {
    kv::KeyValue* pair = op->add_pairs();
    pair->set_key(std::move(call.args[i]));
    pair->set_value(std::move(call.args[i + 1]));
  }
  return true;
}

}  // namespace

void HandleMSet(CommandCall& call) {
  kv::Command cmd;
  if (FillPairs(call, cmd.mutable_mset())) call.Run(std::move(cmd));
}

void HandleMSetNx(CommandCall& call) {
  kv::Command cmd;
  if (FillPairs(call, cmd.mutable_msetnx())) call.Run(std::move(cmd));
}

void HandleIncrDecr(CommandCall& call) {
  const std::string_view name = call.spec.name;
  int64_t delta = 1;
  if (name == "incrby" || name == "decrby") {
    if (!kv::ParseInt64(call.args[2], &delta)) {
      call.out.Error(kErrNotInteger);
      return;
    }
  }
  if (name == "decr" || name == "decrby") {
    if (delta == std::numeric_limits<int64_t>::min()) {
      call.out.Error("ERR decrement would overflow");
      return;
    }
    delta = -delta;
  }
  kv::Command cmd;
  cmd.mutable_incrby()->set_key(std::move(call.args[1]));
  cmd.mutable_incrby()->set_delta(delta);
  call.Run(std::move(cmd));
}

void HandleAppend(CommandCall& call) {
  kv::Command cmd;
  cmd.mutable_append()->set_key(std::move(call.args[1]));
  cmd.mutable_append()->set_value(std::move(call.args[2]));
  call.Run(std::move(cmd));
}

void HandleStrLen(CommandCall& call) {
  kv::Command cmd;
  cmd.mutable_strlen()->set_key(std::move(call.args[1]));
  call.Run(std::move(cmd));
}

void HandleGetRange(CommandCall& call) {
  int64_t start = 0;
  int64_t end = 0;
  if (!kv::ParseInt64(call.args[2], &start) || !kv::ParseInt64(call.args[3], &end)) {
    call.out.Error(kErrNotInteger);
    return;
  }
  kv::Command cmd;
  cmd.mutable_getrange()->set_key(std::move(call.args[1]));
  cmd.mutable_getrange()->set_start(start);
  cmd.mutable_getrange()->set_end(end);
  call.Run(std::move(cmd));
}

}  // namespace micedb::resp
