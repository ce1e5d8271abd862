// Writes the seed corpus of each fuzz target (fuzz/corpus/<target>/) from valid inputs built
// with the real message types, so that mutations start from inputs that get deep into the
// code. Run by hand after a format change (docs/testing-fuzz.md):
//   build/fuzz/fuzz/make_fuzz_corpus fuzz/corpus
// Files are named seed-<name>; what the fuzzers find is never written here.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "common/coding.h"
#include "micedb/region.pb.h"
#include "micedb/transport.pb.h"
#include "store/apply.h"
#include "transport/frame_reader.h"
#include "txn/mvcc.h"

namespace {

namespace fs = std::filesystem;
using micedb::kv::Command;
using micedb::region::RegionRequest;
using micedb::txn::ComposeTs;
using TxnBody = micedb::txn::pb::TxnRequest;

bool Write(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream out(dir / ("seed-" + name), std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

// ---- resp_parser_fuzz: byte 0 picks the split point (its top bit: not authenticated) ----

std::string Resp(std::initializer_list<std::string> args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const std::string& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

bool RespCorpus(const fs::path& dir) {
  const std::vector<std::pair<std::string, std::string>> seeds = {
      {"set", "\x07" + Resp({"SET", "key", "value"})},
      {"get-pipelined", "\x0d" + Resp({"GET", "a"}) + Resp({"GET", "b"}) + Resp({"PING"})},
      {"mset", "\x21" + Resp({"MSET", "a", "1", "b", "2", "c", "3"})},
      {"inline", "\x03PING\r\nECHO hello\r\n"},
      {"inline-quotes", "\x05SET \"a b\\x41\\n\" 'c d'\r\n"},
      {"empty-bulk", "\x02" + Resp({"SET", "k", ""})},
      {"unauthenticated", "\x85" + Resp({"AUTH", "secret"}) + Resp({"GET", "k"})},
      {"multi-exec",
       "\x11" + Resp({"MULTI"}) + Resp({"INCR", "n"}) + Resp({"GET", "n"}) + Resp({"EXEC"})},
      {"binary-value", "\x09" + Resp({"SET", std::string("k\0\r\n", 4), "\xff\xfe"})},
      {"null-array", std::string("\x01*-1\r\n*0\r\n") + Resp({"PING"})},
      {"bad-length", "\x04*2\r\n$-5\r\nGET\r\n"},
      {"partial", "\x06*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc"},
  };
  for (const auto& [name, bytes] : seeds) {
    if (!Write(dir, name, bytes)) return false;
  }
  return true;
}

// ---- region_request_fuzz: byte 0 (bits 0-1: the region's range; see the target), then
// length-prefixed entries ----

RegionRequest Request(Command cmd, uint64_t request_id = 0, uint64_t version = 3) {
  RegionRequest req;
  req.mutable_header()->set_region_id(7);
  req.mutable_header()->mutable_epoch()->set_conf_ver(2);
  req.mutable_header()->mutable_epoch()->set_version(version);
  if (request_id != 0) {
    req.mutable_header()->set_request_id(request_id);
    req.mutable_header()->set_request_ts_ms(1'700'000'000'000);
    req.mutable_header()->set_propose_ts_ms(1'700'000'000'000);
  }
  cmd.set_now_ms(1'700'000'000'000);
  *req.mutable_kv() = std::move(cmd);
  return req;
}

Command Set(const std::string& k, const std::string& v, int64_t expire_at = 0) {
  Command c;
  c.mutable_set()->set_key(k);
  c.mutable_set()->set_value(v);
  c.mutable_set()->set_expire_at_ms(expire_at);
  return c;
}

Command Get(const std::string& k) {
  Command c;
  c.mutable_get()->set_key(k);
  return c;
}

// Entries as the target reads them; `end_round` after the entry at that position (or none).
std::string Entries(const std::vector<std::string>& entries, uint8_t flags = 1,
                    size_t end_round = static_cast<size_t>(-1)) {
  std::string out(1, static_cast<char>(flags));
  for (size_t i = 0; i < entries.size(); ++i) {
    uint16_t head = static_cast<uint16_t>(entries[i].size());
    if (i == end_round) head |= 0x8000;
    out.push_back(static_cast<char>(head & 0xff));
    out.push_back(static_cast<char>(head >> 8));
    out += entries[i];
  }
  return out;
}

std::string E(Command cmd, uint64_t request_id = 0) {
  return micedb::store::EncodeEntry(Request(std::move(cmd), request_id));
}

// Transactional steps (region_request_fuzz byte 0 bit 1: a region of transactional keys).
std::string T(TxnBody body) {
  RegionRequest req;
  req.mutable_header()->set_region_id(7);
  req.mutable_header()->mutable_epoch()->set_conf_ver(2);
  req.mutable_header()->mutable_epoch()->set_version(3);
  *req.mutable_txn() = std::move(body);
  return micedb::store::EncodeEntry(std::move(req));
}

// A prewrite of `keys` (puts, the first the primary); a key "-k" deletes k.
TxnBody Prewrite(const std::vector<std::string>& keys, uint64_t start_ts, uint64_t ttl_ms = 0) {
  TxnBody t;
  auto* p = t.mutable_prewrite();
  for (const std::string& k : keys) {
    auto* m = p->add_mutations();
    if (k[0] == '-') {
      m->set_op(micedb::txn::pb::Mutation::DELETE);
      m->set_key(k.substr(1));
    } else {
      m->set_key(k);
      // One value too long to inline in the lock (txn::kShortValueMax).
      m->set_value(k == "c" ? std::string(300, 'c') : "v" + k);
    }
  }
  p->set_primary(p->mutations(0).key());
  p->set_start_ts(start_ts);
  p->set_ttl_ms(ttl_ms);
  return t;
}

TxnBody Commit(const std::vector<std::string>& keys, uint64_t start_ts, uint64_t commit_ts) {
  TxnBody t;
  for (const std::string& k : keys) t.mutable_commit()->add_keys(k);
  t.mutable_commit()->set_start_ts(start_ts);
  t.mutable_commit()->set_commit_ts(commit_ts);
  return t;
}

TxnBody TxnGet(const std::string& k, uint64_t read_ts) {
  TxnBody t;
  t.mutable_get()->set_key(k);
  t.mutable_get()->set_read_ts(read_ts);
  return t;
}

void TxnSeeds(std::vector<std::pair<std::string, std::string>>* seeds) {
  const uint64_t now = ComposeTs(1'700'000'000'000);
  {
    TxnBody batch_get, scan;
    for (const char* k : {"b", "c", "d"}) batch_get.mutable_batch_get()->add_keys(k);
    batch_get.mutable_batch_get()->set_read_ts(12);
    scan.mutable_scan()->set_start("b");
    scan.mutable_scan()->set_read_ts(12);
    seeds->emplace_back("txn-2pc",
                        Entries({T(Prewrite({"b", "c", "-d"}, 10, 3000)), T(batch_get),
                                 T(Commit({"b", "c", "d"}, 10, 11)), T(TxnGet("c", 12)), T(scan)},
                                2, 1));
  }
  {
    TxnBody one_pc = Prewrite({"e", "f"}, 20);
    one_pc.mutable_prewrite()->set_one_pc_commit_ts(21);
    TxnBody async = Prewrite({"g", "h"}, 30);
    async.mutable_prewrite()->set_use_async_commit(true);
    async.mutable_prewrite()->add_secondaries("h");
    async.mutable_prewrite()->set_min_commit_ts(31);
    TxnBody secondary, status;
    secondary.mutable_check_secondary_locks()->add_keys("h");
    secondary.mutable_check_secondary_locks()->set_start_ts(30);
    status.mutable_check_txn_status()->set_primary("g");
    status.mutable_check_txn_status()->set_start_ts(30);
    status.mutable_check_txn_status()->set_current_ts(now);
    status.mutable_check_txn_status()->set_force_sync_commit(true);
    seeds->emplace_back("txn-1pc-async",
                        Entries({T(one_pc), T(TxnGet("e", 22)), T(async), T(secondary), T(status),
                                 T(Commit({"g", "h"}, 30, 32))},
                                2, 2));
  }
  {
    // A lock around now: alive or past its TTL by the status check's current_ts.
    const uint64_t start = ComposeTs(1'699'999'990'000);
    TxnBody beat, status, resolve, rollback, scan_lock;
    beat.mutable_heart_beat()->set_primary("c");
    beat.mutable_heart_beat()->set_start_ts(start);
    beat.mutable_heart_beat()->set_ttl_ms(20000);
    status.mutable_check_txn_status()->set_primary("c");
    status.mutable_check_txn_status()->set_start_ts(start);
    status.mutable_check_txn_status()->set_current_ts(now);
    resolve.mutable_resolve_lock()->set_start_ts(start);
    resolve.mutable_resolve_lock()->set_start("b");
    resolve.mutable_resolve_lock()->set_limit(1);
    rollback.mutable_rollback()->add_keys("l");
    rollback.mutable_rollback()->set_start_ts(start);
    rollback.mutable_rollback()->set_protect(true);
    scan_lock.mutable_scan_lock()->set_start("b");
    scan_lock.mutable_scan_lock()->set_max_start_ts(now);
    seeds->emplace_back(
        "txn-ttl", Entries({T(Prewrite({"c", "l"}, start, 3000)), T(scan_lock), T(beat), T(status),
                            T(resolve), T(rollback), T(scan_lock)},
                           2 | 0x10, 1));
  }
  {
    TxnBody gc;
    gc.mutable_gc()->set_start("b");
    gc.mutable_gc()->set_safe_point(5);
    gc.mutable_gc()->set_limit(2);
    seeds->emplace_back(
        "txn-gc", Entries({T(Prewrite({"b"}, 1)), T(Commit({"b"}, 1, 2)), T(Prewrite({"-b"}, 3)),
                           T(Commit({"b"}, 3, 4)), T(gc), T(TxnGet("b", 3)), T(TxnGet("b", 6))},
                          0, 3));
  }
  {
    // Built transactional steps (the builder's flags byte with 0x40), proposed through
    // BeforeProposeTxn: regions of any key and of transactional keys, each TSO answer.
    uint32_t x = 54321;
    for (int run = 0; run < 4; ++run) {
      std::string bytes(1, static_cast<char>((run & 1 ? 2 : 0) | run << 2 | (run & 2) << 4));
      for (int e = 0; e < 16; ++e) {
        std::string choices(32, '\0');
        for (char& c : choices) {
          x = x * 1103515245 + 12345;
          c = static_cast<char>(x >> 16);
        }
        choices[0] = static_cast<char>((choices[0] & 0x80) | 0x40);
        uint16_t head = static_cast<uint16_t>(choices.size()) | 0x4000;
        if (e % 4 == 3) head |= 0x8000;
        bytes.push_back(static_cast<char>(head & 0xff));
        bytes.push_back(static_cast<char>(head >> 8));
        bytes += choices;
      }
      seeds->emplace_back("built-txn-" + std::to_string(run), bytes);
    }
  }
}

bool RegionCorpus(const fs::path& dir) {
  std::vector<std::pair<std::string, std::string>> seeds;
  seeds.emplace_back("set-get", Entries({E(Set("c", "v")), E(Get("c"))}, 1, 0));
  {
    Command mset, mget;
    for (const char* k : {"b", "c", "d"}) {
      auto* kv = mset.mutable_mset()->add_pairs();
      kv->set_key(k);
      kv->set_value(std::string("v") + k);
      mget.mutable_mget()->add_keys(k);
    }
    Command msetnx = mset;
    *msetnx.mutable_msetnx()->mutable_pairs() = mset.mset().pairs();
    seeds.emplace_back("mset-mget", Entries({E(mset), E(mget), E(msetnx)}));
  }
  {
    Command incr, append, range, strlen;
    incr.mutable_incrby()->set_key("n");
    incr.mutable_incrby()->set_delta(5);
    append.mutable_append()->set_key("s");
    append.mutable_append()->set_value("tail");
    range.mutable_getrange()->set_key("s");
    range.mutable_getrange()->set_start(-3);
    range.mutable_getrange()->set_end(-1);
    strlen.mutable_strlen()->set_key("s");
    seeds.emplace_back("incr-append", Entries({E(incr), E(incr), E(Set("s", "12")), E(append),
                                               E(range), E(strlen)}));
  }
  {
    Command expire, ttl, persist, del, exists, type;
    expire.mutable_expire_at()->set_key("c");
    expire.mutable_expire_at()->set_expire_at_ms(1'700'000'060'000);
    expire.mutable_expire_at()->set_gt(true);
    ttl.mutable_ttl()->set_key("c");
    ttl.mutable_ttl()->set_millis(true);
    persist.mutable_persist()->set_key("c");
    del.mutable_del()->add_keys("c");
    del.mutable_del()->add_keys("d");
    exists.mutable_exists()->add_keys("c");
    type.mutable_type()->set_key("c");
    seeds.emplace_back("expiry", Entries({E(Set("c", "v", 1'700'000'030'000)), E(expire), E(ttl),
                                          E(persist), E(type), E(del), E(exists)},
                                         1, 2));
  }
  {
    Command scan, dbsize, revisions, flush;
    scan.mutable_scan()->set_start("");
    scan.mutable_scan()->set_limit(10);
    scan.mutable_scan()->set_match("c*[a-z]?");
    scan.mutable_scan()->set_with_values(true);
    dbsize.mutable_dbsize()->set_count_expires(true);
    revisions.mutable_revisions()->add_keys("c");
    flush.mutable_flushall();
    seeds.emplace_back("scan-flush", Entries({E(Set("ca", "1")), E(Set("cb", "2")), E(scan),
                                              E(dbsize), E(revisions), E(flush), E(dbsize)},
                                             0, 1));
  }
  {
    Command cas, cas_absent;
    cas.mutable_compare_and_swap()->set_key("c");
    cas.mutable_compare_and_swap()->set_expected_value("v");
    cas.mutable_compare_and_swap()->set_new_value("w");
    cas_absent.mutable_compare_and_swap()->set_key("e");
    cas_absent.mutable_compare_and_swap()->set_expect_absent(true);
    cas_absent.mutable_compare_and_swap()->set_delete_key(true);
    seeds.emplace_back("cas", Entries({E(Set("c", "v")), E(cas), E(cas_absent)}));
  }
  {
    Command txn;
    auto* w = txn.mutable_txn()->add_watched();
    w->set_key("c");
    w->set_revision(1);
    *txn.mutable_txn()->add_commands() = Set("c", "x");
    *txn.mutable_txn()->add_commands() = Get("c");
    Command incr;
    incr.mutable_incrby()->set_key("c");
    incr.mutable_incrby()->set_delta(1);
    *txn.mutable_txn()->add_commands() = incr;
    seeds.emplace_back("txn", Entries({E(Set("c", "v")), E(txn, 41), E(txn, 41)}, 1, 0));
  }
  {
    Command expired;
    auto* k = expired.mutable_delete_expired()->add_keys();
    k->set_key("c");
    k->set_expire_at_ms(1'699'999'999'000);
    seeds.emplace_back("delete-expired",
                       Entries({E(Set("c", "v", 1'699'999'999'000)), E(expired)}, 1, 0));
  }
  seeds.emplace_back("dedup", Entries({E(Set("c", "1"), 9), E(Set("c", "2"), 9)}, 1, 0));
  {
    // Refused: a stale epoch, another region, a key outside the range, no body, admin.
    RegionRequest stale = Request(Set("c", "v"), 0, 2);
    RegionRequest other = Request(Set("c", "v"));
    other.mutable_header()->set_region_id(8);
    RegionRequest outside = Request(Set("z", "v"));
    RegionRequest nobody = Request(Set("c", "v"));
    nobody.clear_kv();
    RegionRequest admin = Request(Set("c", "v"));
    admin.mutable_admin()->mutable_transfer_leader()->set_node_id(2);
    seeds.emplace_back(
        "refused", Entries({micedb::store::EncodeEntry(stale), micedb::store::EncodeEntry(other),
                            micedb::store::EncodeEntry(outside), micedb::store::EncodeEntry(nobody),
                            micedb::store::EncodeEntry(admin), "\xff\xff"}));
  }
  {
    // An entry from before the envelope: a bare kv.Command.
    Command legacy = Set("c", "old");
    legacy.set_now_ms(1'700'000'000'000);
    legacy.set_request_id(5);
    legacy.set_request_ts_ms(1'700'000'000'000);
    seeds.emplace_back("legacy", Entries({legacy.SerializeAsString(), E(Get("c"))}));
  }
  {
    // Numbers at their limits: clocks, expiries, offsets, deltas, counts.
    constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
    constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
    Command ttl, range, incr, expire, scan, set_past;
    ttl.mutable_ttl()->set_key("c");
    ttl.set_now_ms(kMin);
    range.mutable_getrange()->set_key("c");
    range.mutable_getrange()->set_start(kMin);
    range.mutable_getrange()->set_end(kMax);
    incr.mutable_incrby()->set_key("n");
    incr.mutable_incrby()->set_delta(kMax);
    expire.mutable_expire_at()->set_key("c");
    expire.mutable_expire_at()->set_expire_at_ms(kMin);
    expire.mutable_expire_at()->set_lt(true);
    scan.mutable_scan()->set_limit(std::numeric_limits<uint64_t>::max());
    set_past = Set("d", "v", kMin);
    RegionRequest late_ttl = Request(ttl);
    late_ttl.mutable_kv()->set_now_ms(kMin);
    seeds.emplace_back(
        "extremes", Entries({E(Set("c", "v", kMax)), micedb::store::EncodeEntry(late_ttl), E(range),
                             E(incr), E(incr), E(expire), E(scan), E(set_past)},
                            0, 0));
  }
  {
    // Requests made by RequestBuilder from choice bytes (bit 14 of the head): a few runs of
    // pseudo-random choices, each a dozen entries in rounds of four.
    uint32_t x = 12345;
    for (int run = 0; run < 4; ++run) {
      std::string bytes(1, static_cast<char>(run & 1));
      for (int e = 0; e < 12; ++e) {
        std::string choices(24, '\0');
        for (char& c : choices) {
          x = x * 1103515245 + 12345;
          c = static_cast<char>(x >> 16);
        }
        uint16_t head = static_cast<uint16_t>(choices.size()) | 0x4000;
        if (e % 4 == 3) head |= 0x8000;
        bytes.push_back(static_cast<char>(head & 0xff));
        bytes.push_back(static_cast<char>(head >> 8));
        bytes += choices;
      }
      seeds.emplace_back("built-" + std::to_string(run), bytes);
    }
  }
  TxnSeeds(&seeds);
  for (const auto& [name, bytes] : seeds) {
    if (!Write(dir, name, bytes)) return false;
  }
  return true;
}

// ---- raft_frame_fuzz: byte 0 seeds the read sizes, byte 1 the fragment size; frames ----

std::string Frame(uint8_t type, const std::string& payload) {
  std::string out;
  micedb::PutFixed32(&out, static_cast<uint32_t>(payload.size()));
  out.push_back(static_cast<char>(type));
  out += payload;
  return out;
}

std::string Fragmented(const std::string& frame, size_t piece) {
  std::string out;
  for (size_t off = 0; off < frame.size(); off += piece) {
    out += Frame(micedb::transport::kFragmentFrame, frame.substr(off, piece));
  }
  return out;
}

bool FrameCorpus(const fs::path& dir) {
  using namespace micedb::transport;
  RaftBatch heartbeat;
  heartbeat.set_from_node(1);
  heartbeat.set_from_addr("127.0.0.1:20001");
  heartbeat.set_cluster_id(77);
  heartbeat.set_incarnation(5);
  auto* hb = heartbeat.add_msgs();
  hb->set_type(micedb::raft::MSG_HEARTBEAT);
  hb->set_to(2);
  hb->set_from(1);
  hb->set_term(3);
  hb->set_commit(10);
  hb->set_region_id(1);

  RaftBatch append = heartbeat;
  auto* app = append.mutable_msgs(0);
  app->set_type(micedb::raft::MSG_APP);
  app->set_index(10);
  app->set_log_term(3);
  for (int i = 0; i < 3; ++i) {
    auto* e = app->add_entries();
    e->set_index(11 + i);
    e->set_term(3);
    e->set_data(micedb::store::EncodeEntry(Request(Set("k" + std::to_string(i), "v"))));
  }

  ForwardCalls calls;
  calls.set_from_node(1);
  calls.set_from_addr("127.0.0.1:20001");
  auto* call = calls.add_calls();
  call->set_id(1);
  *call->mutable_request()->mutable_request() = Request(Get("k"));

  ForwardReplies replies;
  replies.set_from_node(2);
  auto* reply = replies.add_replies();
  reply->set_id(1);
  reply->mutable_response()->mutable_response()->mutable_kv()->mutable_ok();

  const std::string hb_frame = Frame(kRaftBatchFrame, heartbeat.SerializeAsString());
  const std::string app_frame = Frame(kRaftBatchFrame, append.SerializeAsString());
  // A heartbeat between the second and third fragment of the append.
  std::string passed = Fragmented(app_frame, 64);
  passed.insert(std::min(passed.size(), 2 * (kHeaderBytes + 64)), hb_frame);
  const std::vector<std::pair<std::string, std::string>> seeds = {
      {"heartbeat", std::string("\x00\x08", 2) + hb_frame},
      {"append", "\x11\x03" + app_frame + hb_frame},
      {"forward-calls", "\x05\x10" + Frame(kForwardCallsFrame, calls.SerializeAsString())},
      {"forward-replies", "\x2a\x01" + Frame(kForwardRepliesFrame, replies.SerializeAsString())},
      {"fragments", "\x07\x02" + Fragmented(app_frame, 40)},
      {"fragments-passed", "\x09\x04" + passed},
      {"unknown-type", "\x03\x05" + Frame(9, "newer") + hb_frame},
      {"empty-frames", "\x01\x01" + Frame(kRaftBatchFrame, "") + Frame(kForwardRepliesFrame, "")},
      {"bad-payload", "\x02\x07" + hb_frame + Frame(kRaftBatchFrame, "\xff\xff\xff")},
      {"over-limit", "\x04\x09" + hb_frame + std::string("\xff\xff\xff\x7f\x01", 5)},
  };
  for (const auto& [name, bytes] : seeds) {
    if (!Write(dir, name, bytes)) return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR (fuzz/corpus)\n", argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  if (!RespCorpus(root / "resp_parser_fuzz") || !RegionCorpus(root / "region_request_fuzz") ||
      !FrameCorpus(root / "raft_frame_fuzz")) {
    std::fprintf(stderr, "make_fuzz_corpus: cannot write under %s\n", root.c_str());
    return 1;
  }
  return 0;
}
