// RESP transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH. Queued commands run as one kv Txn
// command, applied atomically; WATCH remembers each key's mod revision, and the Txn runs only
// if none changed (otherwise EXEC replies with a null array, as Redis does).
#include <memory>

#include "frontend/resp/resp_handlers.h"
#include "frontend/resp/resp_render.h"

namespace micedb::resp {
namespace {

void EndMulti(Session& session) {
  session.in_multi = false;
  session.multi_failed = false;
  session.queued.clear();
  session.queued_bytes = 0;
  session.watched.clear();
}

}  // namespace

void HandleMulti(CommandCall& call) {
  if (call.session.in_multi) {
    call.out.Error("ERR MULTI calls can not be nested");
    return;
  }
  call.session.in_multi = true;
  call.session.multi_failed = false;
  call.session.queued.clear();
  call.session.queued_bytes = 0;
  call.out.Ok();
}

void HandleDiscard(CommandCall& call) {
  if (!call.session.in_multi) {
    call.out.Error("ERR DISCARD without MULTI");
    return;
  }
  EndMulti(call.session);
  call.out.Ok();
}

void HandleExec(CommandCall& call) {
  Session& session = call.session;
  if (!session.in_multi) {
    call.out.Error("ERR EXEC without MULTI");
    return;
  }
  if (session.multi_failed) {
    EndMulti(session);
    call.out.Error("EXECABORT Transaction discarded because of previous errors.");
    return;
  }
  auto queued = std::make_shared<std::vector<Plan>>(std::move(session.queued));
  session.queued.clear();
  session.queued_bytes = 0;
  kv::Command cmd;
  kv::Txn* txn = cmd.mutable_txn();
  for (const auto& [key, revision] : session.watched) {
    kv::WatchedKey* watched = txn->add_watched();
    watched->set_key(key);
    watched->set_revision(revision);
  }
  // The commands move into the txn; the (now empty) optionals stay engaged, which tells the
  // renderer below which queued entries have a result in the txn's reply.
  for (Plan& plan : *queued) {
    if (plan.command.has_value()) *txn->add_commands() = std::move(*plan.command);
  }
  EndMulti(session);
  if (txn->watched().empty() && txn->commands().empty()) {
    // Only commands answered by the gateway itself (PING, ECHO, errors...).
    call.out.ArrayHeader(queued->size());
    for (const Plan& plan : *queued) call.out.Raw(plan.reply);
    return;
  }
  call.Run(std::move(cmd), [queued](const Result<kv::CommandResult>& result, RespWriter& out) {
    if (!result.ok() || !result->has_array()) {
      RenderResult(result, out);  // an error, or a null array when a watched key changed
      return;
    }
    const auto& items = result->array().items();
    out.ArrayHeader(queued->size());
    int next = 0;
    for (const Plan& plan : *queued) {
      if (!plan.command.has_value()) {
        out.Raw(plan.reply);
        continue;
      }
      if (next >= items.size()) {
        out.Error("ERR transaction result is missing an entry");
        continue;
      }
      const Result<kv::CommandResult> item(items[next++]);
      if (plan.render) {
        plan.render(item, out);
      } else {
        RenderResult(item, out);
      }
    }
  });
}

void HandleWatch(CommandCall& call) {
  Session& session = call.session;
  if (session.in_multi) {
    call.out.Error("ERR WATCH inside MULTI is not allowed");
    return;
  }
  kv::Command cmd;
  for (size_t i = 1; i < call.args.size(); ++i) {
    if (!session.watched.contains(call.args[i])) cmd.mutable_revisions()->add_keys(call.args[i]);
  }
  if (cmd.revisions().keys().empty()) {
    call.out.Ok();
    return;
  }
  if (session.watched.size() + cmd.revisions().keys_size() >
      call.server.options->max_watched_keys) {
    call.out.Error("ERR too many watched keys");
    return;
  }
  Session* s = &session;
  const kv::Revisions keys = cmd.revisions();
  call.Run(std::move(cmd), [s, keys](const Result<kv::CommandResult>& result, RespWriter& out) {
    if (!result.ok() || !result->has_array() || result->array().items_size() != keys.keys_size()) {
      RenderResult(result, out);
      return;
    }
    for (int i = 0; i < keys.keys_size(); ++i) {
      s->watched.emplace(keys.keys(i), static_cast<uint64_t>(result->array().items(i).integer()));
    }
    out.Ok();
  });
}

void HandleUnwatch(CommandCall& call) {
  // Inside MULTI it is queued and has no effect of its own: EXEC forgets the watches anyway.
  if (!call.session.in_multi) call.session.watched.clear();
  call.out.Ok();
}

}  // namespace micedb::resp
