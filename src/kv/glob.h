// Glob-style pattern matching with Redis's rules (KEYS, SCAN MATCH):
//   *        any run of bytes, including none
//   ?        exactly one byte
//   [abc]    one of the listed bytes; [^abc] any byte but those; [a-z] a range (either order)
//   \x       the byte x itself, outside or inside brackets
// A '[' that is never closed extends its set to the end of the pattern; a trailing '\'
// matches a backslash. Matching is on bytes, in time O(pattern * text) and constant stack.
// Thread-safe (pure function).
#pragma once

#include <string_view>

namespace micedb::kv {

[[nodiscard]] bool GlobMatch(std::string_view pattern, std::string_view text, bool nocase = false);

}  // namespace micedb::kv
