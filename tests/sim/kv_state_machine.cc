#include "tests/sim/kv_state_machine.h"

#include <charconv>
#include <vector>

#include <fmt/format.h>

#include "tests/sim/digest.h"

namespace micedb::sim {
namespace {

std::vector<std::string_view> SplitWords(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    size_t pos = s.find(sep);
    out.push_back(s.substr(0, pos));
    if (pos == std::string_view::npos) break;
    s.remove_prefix(pos + 1);
  }
  return out;
}

bool ParseU64(std::string_view s, uint64_t* v, int base = 10) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *v, base);
  return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

std::string EncodeKvOp(const KvOp& op) {
  switch (op.kind) {
    case KvOpKind::kPut:
      return fmt::format("put {} {} {}", op.id, op.key, op.value);
    case KvOpKind::kCas:
      return fmt::format("cas {} {} {} {}", op.id, op.key, op.expect.empty() ? "-" : op.expect,
                         op.value);
    case KvOpKind::kGet:
      return fmt::format("get {} {}", op.id, op.key);
  }
  return "";
}

std::optional<KvOp> DecodeKvOp(std::string_view data) {
  std::vector<std::string_view> w = SplitWords(data, ' ');
  if (w.size() < 3) return std::nullopt;
  KvOp op;
  if (!ParseU64(w[1], &op.id)) return std::nullopt;
  op.key = std::string(w[2]);
  if (w[0] == "put" && w.size() == 4) {
    op.kind = KvOpKind::kPut;
    op.value = std::string(w[3]);
  } else if (w[0] == "cas" && w.size() == 5) {
    op.kind = KvOpKind::kCas;
    op.expect = w[3] == "-" ? "" : std::string(w[3]);
    op.value = std::string(w[4]);
  } else if (w[0] == "get" && w.size() == 3) {
    op.kind = KvOpKind::kGet;
  } else {
    return std::nullopt;
  }
  return op;
}

void KvStateMachine::Apply(const raft::Entry& e) {
  applied_ = LogIndex(e.index());
  digest_ = ChainDigest(digest_, Term(e.term()), EntryContentHash(e));
  if (e.type() != raft::ENTRY_NORMAL) return;
  std::optional<KvOp> op = DecodeKvOp(e.data());
  if (!op.has_value()) return;
  switch (op->kind) {
    case KvOpKind::kPut:
      data_[op->key] = op->value;
      break;
    case KvOpKind::kCas: {
      auto it = data_.find(op->key);
      std::string_view current = it == data_.end() ? std::string_view() : it->second;
      if (current == op->expect) data_[op->key] = op->value;
      break;
    }
    case KvOpKind::kGet:
      break;
  }
}

std::optional<std::string> KvStateMachine::Get(const std::string& key) const {
  auto it = data_.find(key);
  if (it == data_.end()) return std::nullopt;
  return it->second;
}

std::string KvStateMachine::Serialize() const {
  std::string out = fmt::format("{:x}\n", digest_);
  for (const auto& [k, v] : data_) out += fmt::format("{} {}\n", k, v);
  return out;
}

Status KvStateMachine::Restore(const raft::Snapshot& snap) {
  std::map<std::string, std::string> data;
  uint64_t digest = 0;
  const std::string& text = snap.data();
  if (!text.empty()) {
    std::vector<std::string_view> lines = SplitWords(text, '\n');
    if (lines.empty() || !ParseU64(lines[0], &digest, 16)) {
      return Status::Corruption("kv snapshot: bad digest line");
    }
    for (size_t i = 1; i < lines.size(); ++i) {
      if (lines[i].empty()) continue;
      std::vector<std::string_view> kv = SplitWords(lines[i], ' ');
      if (kv.size() != 2) return Status::Corruption("kv snapshot: bad line");
      data.emplace(std::string(kv[0]), std::string(kv[1]));
    }
  } else if (snap.metadata().index() != 0) {
    return Status::Corruption("kv snapshot: no data for a non-empty state");
  }
  data_ = std::move(data);
  digest_ = digest;
  applied_ = LogIndex(snap.metadata().index());
  return Status::OK();
}

}  // namespace micedb::sim
