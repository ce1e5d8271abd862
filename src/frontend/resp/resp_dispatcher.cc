#include "frontend/resp/resp_dispatcher.h"

#include <fmt/format.h>

namespace micedb::resp {
namespace {

Plan ErrorPlan(const Session& session, std::string_view text) {
  Plan plan;
  RespWriter(&plan.reply, session.resp).Error(text);
  return plan;
}

// The first key argument longer than the limit, if any.
bool KeyTooLong(const CommandSpec& spec, const std::vector<std::string>& args, size_t max) {
  if (spec.first_key <= 0) return false;
  const size_t last = spec.last_key < 0 ? args.size() - static_cast<size_t>(-spec.last_key)
                                        : static_cast<size_t>(spec.last_key);
  const size_t step = spec.key_step > 0 ? static_cast<size_t>(spec.key_step) : 1;
  for (size_t i = static_cast<size_t>(spec.first_key); i <= last && i < args.size(); i += step) {
    if (args[i].size() > max) return true;
  }
  return false;
}

}  // namespace

std::string UnknownCommandError(const std::vector<std::string>& args) {
  std::string listed;
  for (size_t i = 1; i < args.size() && listed.size() < 128; ++i) {
    const size_t room = 128 - listed.size();
    listed += fmt::format("'{}' ", std::string_view(args[i]).substr(0, room));
  }
  return fmt::format("ERR unknown command '{}', with args beginning with: {}",
                     std::string_view(args[0]).substr(0, 128), listed);
}

Plan DispatchCommand(Session& session, ServerContext& server, std::vector<std::string>& args,
                     int64_t now_ms, const CommandSpec** spec_out) {
  const CommandSpec* spec = FindCommand(args[0]);
  if (spec_out != nullptr) *spec_out = spec;
  if (spec == nullptr) {
    if (session.in_multi) session.multi_failed = true;
    return ErrorPlan(session, UnknownCommandError(args));
  }
  if (!ArityOk(spec->arity, args.size())) {
    if (session.in_multi) session.multi_failed = true;
    return ErrorPlan(session, WrongArityError(spec->name));
  }
  if (!session.authenticated && !(spec->flags & kCmdNoAuth)) {
    if (session.in_multi) session.multi_failed = true;
    return ErrorPlan(session, kErrNoAuth);
  }
  const bool queue = session.in_multi && !(spec->flags & kCmdTxnControl);
  if (queue && (spec->flags & kCmdNoMulti)) {
    session.multi_failed = true;
    return ErrorPlan(session, "ERR Command not allowed inside a transaction");
  }
  if (queue && session.queued.size() >= server.options->max_queued_commands) {
    session.multi_failed = true;
    return ErrorPlan(session, "ERR too many commands queued in this transaction");
  }
  if (queue) {
    size_t bytes = 0;
    for (const std::string& a : args) bytes += a.size();
    // One transaction is one raft entry: its arguments are capped like one request's.
    if (session.queued_bytes + bytes > server.options->max_txn_bytes) {
      session.multi_failed = true;
      return ErrorPlan(session, fmt::format("ERR the transaction's commands exceed {} bytes "
                                            "(--max-txn-bytes)",
                                            server.options->max_txn_bytes));
    }
    session.queued_bytes += bytes;
  }

  Plan plan;
  if (KeyTooLong(*spec, args, server.options->max_key_bytes)) {
    RespWriter(&plan.reply, session.resp)
        .Error(fmt::format("ERR key too large (the limit is {} bytes)",
                           server.options->max_key_bytes));
  } else {
    CommandCall call(session, server, args, *spec, plan, now_ms);
    spec->handler(call);
  }
  if (!queue) return plan;
  // Errors found in the arguments are reported by EXEC in the command's place, as Redis
  // reports them when the command runs.
  session.queued.push_back(std::move(plan));
  Plan queued;
  RespWriter(&queued.reply, session.resp).SimpleString("QUEUED");
  return queued;
}

}  // namespace micedb::resp
