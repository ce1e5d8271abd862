#include "kv/glob.h"

#include <cstddef>
#include <utility>

namespace micedb::kv {
namespace {

unsigned char Fold(unsigned char c, bool nocase) {
  return nocase && c >= 'A' && c <= 'Z' ? static_cast<unsigned char>(c - 'A' + 'a') : c;
}

// Matches one pattern element (not '*') starting at pattern[*p] against byte c and moves
// *p past the element. Returns whether it matched.
bool MatchOne(std::string_view pattern, size_t* p, unsigned char c, bool nocase) {
  const unsigned char folded = Fold(c, nocase);
  const char head = pattern[*p];
  if (head == '?') {
    ++*p;
    return true;
  }
  if (head == '\\' && *p + 1 < pattern.size()) {
    const unsigned char lit = static_cast<unsigned char>(pattern[*p + 1]);
    *p += 2;
    return Fold(lit, nocase) == folded;
  }
  if (head != '[') {
    ++*p;
    return Fold(static_cast<unsigned char>(head), nocase) == folded;
  }
  // A bracket set.
  size_t i = *p + 1;
  bool negate = false;
  if (i < pattern.size() && pattern[i] == '^') {
    negate = true;
    ++i;
  }
  bool found = false;
  while (i < pattern.size() && pattern[i] != ']') {
    if (pattern[i] == '\\' && i + 1 < pattern.size()) {
      if (Fold(static_cast<unsigned char>(pattern[i + 1]), nocase) == folded) found = true;
      i += 2;
    } else if (i + 2 < pattern.size() && pattern[i + 1] == '-') {
      unsigned char lo = Fold(static_cast<unsigned char>(pattern[i]), nocase);
      unsigned char hi = Fold(static_cast<unsigned char>(pattern[i + 2]), nocase);
      if (lo > hi) std::swap(lo, hi);
      if (folded >= lo && folded <= hi) found = true;
      i += 3;
    } else {
      if (Fold(static_cast<unsigned char>(pattern[i]), nocase) == folded) found = true;
      ++i;
    }
  }
  *p = i < pattern.size() ? i + 1 : i;  // past ']' (or the end of an unclosed set)
  return found != negate;
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text, bool nocase) {
  size_t p = 0;
  size_t t = 0;
  // Where to resume after the most recent '*': the pattern just after it, and the text
  // position it should try to swallow one more byte of. Only the latest star matters,
  // because every other element matches exactly one byte.
  size_t star_p = std::string_view::npos;
  size_t star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      while (p < pattern.size() && pattern[p] == '*') ++p;
      if (p == pattern.size()) return true;
      star_p = p;
      star_t = t;
      continue;
    }
    if (p < pattern.size()) {
      size_t next = p;
      if (MatchOne(pattern, &next, static_cast<unsigned char>(text[t]), nocase)) {
        p = next;
        ++t;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace micedb::kv
