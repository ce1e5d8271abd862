#include "kv/grpc/scan_pager.h"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

namespace micedb::kv {

Result<std::unique_ptr<ScanPager>> ScanPager::Create(const KvApi* api, const v1::ScanRequest& req) {
  const size_t max_key = api->options().max_key_bytes;
  if (req.start().size() > max_key || req.end().size() > max_key) {
    return Status::InvalidArgument(
        fmt::format("scan bound is {} bytes, longer than the limit of {}",
                    std::max(req.start().size(), req.end().size()), max_key));
  }
  MICEDB_ASSIGN_OR_RETURN(ReadMode mode, KvApi::ReadModeOf(req.consistency()));
  const uint64_t max_limit = api->options().max_scan_limit;
  const uint64_t limit = req.limit() == 0 ? max_limit : std::min(req.limit(), max_limit);
  return std::unique_ptr<ScanPager>(new ScanPager(api, mode, req, limit));
}

ScanPager::ScanPager(const KvApi* api, ReadMode mode, const v1::ScanRequest& req, uint64_t limit)
    : api_(api),
      mode_(mode),
      end_(req.end()),
      with_values_(!req.keys_only()),
      cursor_(req.start()),
      remaining_(limit),
      page_keys_(std::max<size_t>(api->options().scan_page_keys, 1)) {
  finished_ = remaining_ == 0 || (!end_.empty() && end_ <= cursor_);
}

void ScanPager::Next(PageDone done) {
  Command cmd;
  cmd.set_now_ms(api_->NowMs());
  Scan* scan = cmd.mutable_scan();
  scan->set_start(cursor_);
  scan->set_end(end_);
  // Expired keys are examined but not returned, so examining no more than remaining_ keys
  // can never overshoot the limit.
  scan->set_limit(std::min<uint64_t>(page_keys_, remaining_));
  scan->set_with_values(with_values_);
  api_->backend()->Execute(std::move(cmd), mode_,
                           [this, done = std::move(done)](Result<CommandResult> r) {
                             std::vector<v1::ScanResponse> messages;
                             Status st = r.ok() ? TakePage(*r, &messages) : r.status();
                             if (!st.ok()) {
                               finished_ = true;
                             }
                             done(std::move(st), std::move(messages));
                           });
}

Status ScanPager::TakePage(const CommandResult& result, std::vector<v1::ScanResponse>* out) {
  if (result.has_error()) {
    return KvErrorStatus(result.error());
  }
  // [next key or nil, items], docs/kv-format.md.
  if (!result.has_array() || result.array().items_size() != 2 ||
      !result.array().items(1).has_array()) {
    return Status::Internal("unexpected scan result from the store");
  }
  const CommandResult& next = result.array().items(0);
  const auto& items = result.array().items(1).array().items();
  const int stride = with_values_ ? 2 : 1;
  if (items.size() % stride != 0) {
    return Status::Internal("odd scan result from the store");
  }

  const KvApiOptions& options = api_->options();
  size_t page_bytes = 0;
  size_t message_bytes = 0;
  uint64_t pairs = 0;
  for (int i = 0; i < items.size() && remaining_ > 0; i += stride) {
    if (out->empty() || message_bytes >= options.scan_message_bytes) {
      out->emplace_back();
      message_bytes = 0;
    }
    v1::KeyValue* pair = out->back().add_pairs();
    pair->set_key(items[i].bulk());
    if (with_values_) {
      pair->set_value(items[i + 1].bulk());
    }
    const size_t bytes = pair->key().size() + pair->value().size();
    message_bytes += bytes;
    page_bytes += bytes;
    ++pairs;
    --remaining_;
  }
  returned_ += pairs;

  if (remaining_ == 0 || next.has_nil()) {
    finished_ = true;
  } else if (next.kind_case() != CommandResult::kBulk || next.bulk() <= cursor_) {
    return Status::Internal("scan of the store did not advance");
  } else {
    cursor_ = next.bulk();
  }
  if (pairs > 0) {
    const size_t average = std::max<size_t>(page_bytes / pairs, 1);
    page_keys_ = std::clamp<size_t>(options.scan_page_bytes / average, 1,
                                    std::max<size_t>(options.scan_page_keys, 1));
  }
  return Status::OK();
}

}  // namespace micedb::kv
