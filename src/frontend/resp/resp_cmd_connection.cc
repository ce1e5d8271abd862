// RESP connection commands: PING, ECHO, HELLO, AUTH, SELECT, CLIENT, QUIT, READONLY,
// READWRITE. They change only the session, so they answer at once.
#include <algorithm>
#include <iterator>

#include <fmt/format.h>

#include "frontend/resp/resp_handlers.h"
#include "kv/number.h"

namespace micedb::resp {
namespace {

constexpr char kAdvertisedVersion[] = "7.0.0";

// Redis accepts names made of printable ASCII without spaces.
bool ValidClientName(std::string_view name) {
  for (char c : name) {
    if (c < '!' || c > '~') return false;
  }
  return true;
}

constexpr char kErrBadName[] =
    "ERR Client names cannot contain spaces, newlines or special characters.";

// Checks `user`/`password` as AUTH and HELLO AUTH do; on success marks the session
// authenticated.
bool Authenticate(CommandCall& call, std::string_view user, std::string_view password) {
  if (user != "default") return false;
  if (!call.server.options->password.empty() && !PasswordMatches(*call.server.options, password)) {
    return false;
  }
  call.session.authenticated = true;
  return true;
}

void ClientHelp(RespWriter& out) {
  static constexpr std::string_view kLines[] = {
      "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
      "GETNAME",
      "    Return the name of the current connection.",
      "ID",
      "    Return the ID of the current connection.",
      "INFO",
      "    Return information about the current client connection.",
      "LIST [TYPE <normal|master|replica|pubsub>] [ID <id> [<id> ...]]",
      "    Return information about client connections.",
      "SETINFO <option> <value>",
      "    Set client meta attributes (LIB-NAME or LIB-VER).",
      "SETNAME <name>",
      "    Assign the name <name> to the current connection.",
      "HELP",
      "    Print this help.",
  };
  out.ArrayHeader(std::size(kLines));
  for (std::string_view line : kLines) out.SimpleString(line);
}

void ClientList(CommandCall& call) {
  std::vector<uint64_t> ids;
  bool type_matches = true;
  for (size_t i = 2; i < call.args.size();) {
    const std::string opt = AsciiLower(call.args[i]);
    if (opt == "type" && i + 1 < call.args.size()) {
      const std::string type = AsciiLower(call.args[i + 1]);
      if (type != "normal" && type != "master" && type != "replica" && type != "pubsub" &&
          type != "slave") {
        call.out.Error(fmt::format("ERR Unknown client type '{}'", call.args[i + 1]));
        return;
      }
      type_matches = type == "normal";
      i += 2;
    } else if (opt == "id" && i + 1 < call.args.size()) {
      for (++i; i < call.args.size(); ++i) {
        uint64_t id = 0;
        if (!kv::ParseUint64(call.args[i], &id) || id == 0) {
          call.out.Error("ERR Invalid client ID");
          return;
        }
        ids.push_back(id);
      }
    } else {
      call.out.Error(kErrSyntax);
      return;
    }
  }
  std::string text;
  if (type_matches) {
    for (ClientInfo info : call.server.clients->List()) {
      if (!ids.empty() && std::find(ids.begin(), ids.end(), info.id) == ids.end()) continue;
      if (info.id == call.session.id) {
        info = SessionClientInfo(call.session, call.now_ms);
        info.last_command = "client|list";
      }
      text += FormatClientLine(info, call.now_ms);
    }
  }
  call.out.Verbatim("txt", text);
}

}  // namespace

ClientInfo SessionClientInfo(const Session& session, int64_t now_ms) {
  ClientInfo info;
  info.id = session.id;
  info.addr = session.addr;
  info.laddr = session.laddr;
  info.created_ms = session.created_ms;
  info.last_active_ms = now_ms;
  info.name = session.name;
  info.lib_name = session.lib_name;
  info.lib_version = session.lib_version;
  info.resp = static_cast<int>(session.resp);
  info.multi = session.in_multi ? static_cast<int>(session.queued.size()) : -1;
  info.watched = session.watched.size();
  info.readonly = session.read_mode == kv::ReadMode::kLocalStale;
  return info;
}

bool PasswordMatches(const ServerOptions& options, std::string_view password) {
  const std::string& want = options.password;
  // Time depends only on the length of the attempt, not on where it differs.
  unsigned char diff = want.size() == password.size() ? 0 : 1;
  for (size_t i = 0; i < password.size(); ++i) {
    diff |= static_cast<unsigned char>(password[i] ^ want[i % (want.empty() ? 1 : want.size())]);
  }
  return diff == 0 && !want.empty();
}

void HandlePing(CommandCall& call) {
  if (call.args.size() > 2) {
    call.out.Error(WrongArityError("ping"));
  } else if (call.args.size() == 2) {
    call.out.Bulk(call.args[1]);
  } else {
    call.out.SimpleString("PONG");
  }
}

void HandleEcho(CommandCall& call) { call.out.Bulk(call.args[1]); }

void HandleAuth(CommandCall& call) {
  if (call.args.size() > 3) {
    call.out.Error(kErrSyntax);
    return;
  }
  if (call.args.size() == 2 && call.server.options->password.empty()) {
    call.out.Error(
        "ERR AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?");
    return;
  }
  const std::string_view user =
      call.args.size() == 3 ? std::string_view(call.args[1]) : std::string_view("default");
  if (!Authenticate(call, user, call.args.back())) {
    call.out.Error(kErrWrongPass);
    return;
  }
  call.out.Ok();
}

void HandleHello(CommandCall& call) {
  int64_t version = static_cast<int64_t>(call.session.resp);
  if (call.args.size() >= 2) {
    if (!kv::ParseInt64(call.args[1], &version)) {
      call.out.Error("ERR Protocol version is not an integer or out of range");
      return;
    }
    if (version < 2 || version > 3) {
      call.out.Error("NOPROTO unsupported protocol version");
      return;
    }
  }
  const std::string* user = nullptr;
  const std::string* password = nullptr;
  const std::string* name = nullptr;
  for (size_t i = 2; i < call.args.size(); ++i) {
    const std::string opt = AsciiLower(call.args[i]);
    if (opt == "auth" && i + 2 < call.args.size()) {
      user = &call.args[i + 1];
      password = &call.args[i + 2];
      i += 2;
    } else if (opt == "setname" && i + 1 < call.args.size()) {
      name = &call.args[++i];
    } else {
      call.out.Error(fmt::format("ERR Syntax error in HELLO option '{}'", call.args[i]));
      return;
    }
  }
  if (user != nullptr && !Authenticate(call, *user, *password)) {
    call.out.Error(kErrWrongPass);
    return;
  }
  if (!call.session.authenticated) {
    call.out.Error(
        "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
        "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
        "select the RESP protocol version at the same time");
    return;
  }
  if (name != nullptr) {
    if (!ValidClientName(*name)) {
      call.out.Error(kErrBadName);
      return;
    }
    call.session.name = *name;
  }
  call.session.resp = version == 3 ? RespVersion::kResp3 : RespVersion::kResp2;
  RespWriter out(&call.plan.reply, call.session.resp);
  out.MapHeader(7);
  out.Bulk("server");
  out.Bulk("redis");
  out.Bulk("version");
  out.Bulk(kAdvertisedVersion);
  out.Bulk("proto");
  out.Integer(version);
  out.Bulk("id");
  out.Integer(static_cast<int64_t>(call.session.id));
  out.Bulk("mode");
  out.Bulk("standalone");
  out.Bulk("role");
  out.Bulk("master");
  out.Bulk("modules");
  out.ArrayHeader(0);
}

void HandleSelect(CommandCall& call) {
  int64_t index = 0;
  if (!kv::ParseInt64(call.args[1], &index)) {
    call.out.Error(kErrNotInteger);
  } else if (index != 0) {
    call.out.Error("ERR DB index is out of range");
  } else {
    call.out.Ok();
  }
}

void HandleClient(CommandCall& call) {
  const SubcommandSpec* sub = FindSubcommand(call.spec, call.args[1]);
  if (sub == nullptr) {
    call.out.Error(UnknownSubcommandError("client", call.args[1]));
    return;
  }
  if (!ArityOk(sub->arity, call.args.size())) {
    call.out.Error(WrongArityError(fmt::format("client|{}", sub->name)));
    return;
  }
  const std::string_view name = sub->name;
  Session& session = call.session;
  if (name == "getname") {
    if (session.name.empty()) {
      call.out.Null();
    } else {
      call.out.Bulk(session.name);
    }
  } else if (name == "setname") {
    if (!ValidClientName(call.args[2])) {
      call.out.Error(kErrBadName);
      return;
    }
    session.name = call.args[2];
    call.out.Ok();
  } else if (name == "id") {
    call.out.Integer(static_cast<int64_t>(session.id));
  } else if (name == "info") {
    ClientInfo info = SessionClientInfo(session, call.now_ms);
    info.last_command = "client|info";
    call.out.Verbatim("txt", FormatClientLine(info, call.now_ms));
  } else if (name == "list") {
    ClientList(call);
  } else if (name == "setinfo") {
    const std::string attr = AsciiLower(call.args[2]);
    if (!ValidClientName(call.args[3])) {
      call.out.Error(fmt::format("ERR {} cannot contain spaces, newlines or special characters.",
                                 call.args[2]));
      return;
    }
    if (attr == "lib-name") {
      session.lib_name = call.args[3];
    } else if (attr == "lib-ver") {
      session.lib_version = call.args[3];
    } else {
      call.out.Error(fmt::format("ERR Unrecognized option '{}'", call.args[2]));
      return;
    }
    call.out.Ok();
  } else {
    ClientHelp(call.out);
  }
}

void HandleQuit(CommandCall& call) {
  call.out.Ok();
  call.plan.close_after = true;
}

void HandleReadOnly(CommandCall& call) {
  call.session.read_mode = kv::ReadMode::kLocalStale;
  call.out.Ok();
}

void HandleReadWrite(CommandCall& call) {
  call.session.read_mode = kv::ReadMode::kLinearizable;
  call.out.Ok();
}

}  // namespace micedb::resp
