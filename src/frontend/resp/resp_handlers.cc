// Helpers shared by the RESP command handlers.
#include "frontend/resp/resp_handlers.h"

#include <fmt/format.h>

namespace micedb::resp {

void CommandCall::Run(kv::Command cmd, Renderer render) {
  cmd.set_now_ms(now_ms);
  plan.command = std::move(cmd);
  plan.render = std::move(render);
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string WrongArityError(std::string_view full_name) {
  return fmt::format("ERR wrong number of arguments for '{}' command", full_name);
}

std::string UnknownSubcommandError(std::string_view container, std::string_view sub) {
  std::string upper(container);
  for (char& c : upper) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return fmt::format("ERR unknown subcommand '{:.128}'. Try {} HELP.", sub, upper);
}

}  // namespace micedb::resp
