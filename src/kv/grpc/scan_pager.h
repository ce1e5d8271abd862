// ScanPager: one Scan request of the gRPC KV API served as a run of bounded backend scans
// (the kv Scan command, docs/kv-format.md). Each page examines at most scan_page_keys keys
// (fewer once values turn out large, to keep a page near scan_page_bytes) and resumes where
// the previous one stopped; the pairs found are split into ScanResponse messages of about
// scan_message_bytes. The scan stops at the end key, at the end of the keyspace, or once
// `limit` pairs have been returned (0 or more than max_scan_limit: max_scan_limit).
//
// Each page is one backend read, linearizable on its own with LINEARIZABLE consistency; the
// scan as a whole is not a snapshot (a write between two pages may or may not be seen).
//
// Thread-compatible: one caller at a time, and Next only after the previous page arrived.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "kv/grpc/kv_api.h"

namespace micedb::kv {

class ScanPager {
 public:
  // The messages of one page, in key order; empty when every key the page examined had
  // expired. Non-OK: the backend's error, or Internal for a result of the wrong shape.
  using PageDone = std::function<void(Status, std::vector<v1::ScanResponse>)>;

  // Checks `req`: InvalidArgument for a bound longer than max_key_bytes or an unknown
  // consistency. `api` is not owned and must outlive the pager.
  static Result<std::unique_ptr<ScanPager>> Create(const KvApi* api, const v1::ScanRequest& req);

  // Runs the next backend scan and calls `done` from its callback (any thread, possibly
  // before returning). Must not be called when finished(), nor before the previous `done` ran.
  // After an error the pager is finished.
  void Next(PageDone done);

  // True once nothing is left to fetch: range done, limit reached, or an error.
  bool finished() const { return finished_; }
  // Pairs returned so far.
  uint64_t returned() const { return returned_; }
  // Keys the next page may examine (adapts to the size of the values seen).
  size_t page_keys() const { return page_keys_; }

 private:
  ScanPager(const KvApi* api, ReadMode mode, const v1::ScanRequest& req, uint64_t limit);
  // Turns one backend result into messages and advances the cursor.
  Status TakePage(const CommandResult& result, std::vector<v1::ScanResponse>* out);

  const KvApi* const api_;
  const ReadMode mode_;
  const std::string end_;
  const bool with_values_;
  std::string cursor_;  // the first key the next page examines
  uint64_t remaining_;  // pairs still to return
  uint64_t returned_ = 0;
  size_t page_keys_;
  bool finished_ = false;
};

}  // namespace micedb::kv
