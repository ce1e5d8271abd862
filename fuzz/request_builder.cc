#include "request_builder.h"

#include <limits>

#include "txn/mvcc.h"

namespace micedb::fuzz {

uint8_t RequestBuilder::Byte() {
  return pos_ < bytes_.size() ? static_cast<uint8_t>(bytes_[pos_++]) : 0;
}

// Few keys, so that commands meet each other's keys; some lie outside the bounded region
// ("b" <= k < "m"), one is empty, one is binary.
std::string RequestBuilder::Key() {
  static const char* const kKeys[] = {"b", "c", "cc", "l", "a", "m", "z", ""};
  const uint8_t b = Byte();
  if (b == 0xff) return std::string("c\0\xff", 3);
  return kKeys[b % 8];
}

std::string RequestBuilder::Value() {
  switch (Byte() % 6) {
    case 0:
      return "";
    case 1:
      return std::to_string(Number());  // something INCRBY can read
    case 2:
      return "9223372036854775807";
    case 3:
      return " 12";  // not an integer
    default: {
      const size_t len = Byte() % 64;
      return std::string(len, static_cast<char>('a' + Byte() % 26));
    }
  }
}

int64_t RequestBuilder::Number() {
  switch (Byte() % 8) {
    case 0:
      return 0;
    case 1:
      return 1;
    case 2:
      return -1;
    case 3:
      return std::numeric_limits<int64_t>::max();
    case 4:
      return std::numeric_limits<int64_t>::min();
    case 5:
      return kNowMs;
    default: {
      const uint16_t low = Byte();
      return static_cast<int16_t>(low | (Byte() << 8));
    }
  }
}

// Mostly around now (expiries that have or have not passed), sometimes anything.
int64_t RequestBuilder::Time() {
  const uint8_t b = Byte();
  if (b < 200) return kNowMs + (static_cast<int64_t>(b) - 100) * 100;
  if (b < 210) return 0;
  return Number();
}

kv::Command RequestBuilder::Cmd(bool in_txn) {
  kv::Command c;
  switch (Byte() % (in_txn ? 20 : 21)) {
    case 0:
      c.mutable_get()->set_key(Key());
      break;
    case 1:
      for (int n = Byte() % 4; n >= 0; --n) c.mutable_mget()->add_keys(Key());
      break;
    case 2:
      for (int n = Byte() % 4; n >= 0; --n) c.mutable_exists()->add_keys(Key());
      break;
    case 3:
      c.mutable_strlen()->set_key(Key());
      break;
    case 4: {
      auto* op = c.mutable_getrange();
      op->set_key(Key());
      op->set_start(Number());
      op->set_end(Number());
      break;
    }
    case 5:
      c.mutable_ttl()->set_key(Key());
      c.mutable_ttl()->set_millis(Byte() & 1);
      break;
    case 6:
      c.mutable_type()->set_key(Key());
      break;
    case 7: {
      auto* op = c.mutable_scan();
      op->set_start(Key());
      op->set_end(Key());
      op->set_limit(Byte() % 5);
      if (Byte() & 1) op->set_match(Byte() & 1 ? "c*" : "[a-c]?");
      if (Byte() & 1) op->set_type(Byte() & 1 ? "string" : "list");
      op->set_with_values(Byte() & 1);
      break;
    }
    case 8:
      c.mutable_dbsize()->set_count_expires(Byte() & 1);
      break;
    case 9:
      for (int n = Byte() % 3; n >= 0; --n) c.mutable_revisions()->add_keys(Key());
      break;
    case 10: {
      auto* op = c.mutable_set();
      op->set_key(Key());
      op->set_value(Value());
      op->set_condition(static_cast<kv::SetCondition>(Byte() % 3));
      op->set_return_old(Byte() & 1);
      if (Byte() & 1) {
        op->set_keep_ttl(true);
      } else {
        op->set_expire_at_ms(Time());
      }
      break;
    }
    case 11:
      for (int n = Byte() % 3; n >= 0; --n) {
        kv::KeyValue* kv = c.mutable_mset()->add_pairs();
        kv->set_key(Key());
        kv->set_value(Value());
      }
      break;
    case 12:
      for (int n = Byte() % 3; n >= 0; --n) {
        kv::KeyValue* kv = c.mutable_msetnx()->add_pairs();
        kv->set_key(Key());
        kv->set_value(Value());
      }
      break;
    case 13:
      for (int n = Byte() % 3; n >= 0; --n) c.mutable_del()->add_keys(Key());
      break;
    case 14:
      c.mutable_incrby()->set_key(Key());
      c.mutable_incrby()->set_delta(Number());
      break;
    case 15:
      c.mutable_append()->set_key(Key());
      c.mutable_append()->set_value(Value());
      break;
    case 16: {
      auto* op = c.mutable_expire_at();
      op->set_key(Key());
      op->set_expire_at_ms(Time());
      const uint8_t flags = Byte();
      op->set_nx(flags & 1);
      op->set_xx(flags & 2);
      op->set_gt(flags & 4);
      op->set_lt(flags & 8);
      break;
    }
    case 17:
      c.mutable_persist()->set_key(Key());
      break;
    case 18: {
      auto* op = c.mutable_compare_and_swap();
      op->set_key(Key());
      if (Byte() & 1) {
        op->set_expect_absent(true);
      } else {
        op->set_expected_value(Value());
      }
      op->set_new_value(Value());
      op->set_delete_key(Byte() % 4 == 0);
      break;
    }
    case 19: {
      auto* op = c.mutable_delete_expired();
      for (int n = Byte() % 3; n >= 0; --n) {
        kv::ExpiredKey* k = op->add_keys();
        k->set_key(Key());
        k->set_expire_at_ms(Time());
      }
      break;
    }
    default: {
      kv::Txn* txn = c.mutable_txn();
      for (int n = Byte() % 3; n > 0; --n) {
        kv::WatchedKey* w = txn->add_watched();
        w->set_key(Key());
        w->set_revision(Byte() % 8);
      }
      for (int n = 1 + Byte() % 4; n > 0; --n) *txn->add_commands() = Cmd(/*in_txn=*/true);
      break;
    }
  }
  if (Byte() % 16 == 0 && !in_txn) c.set_now_ms(Number());
  return c;
}

// A few small timestamps that transactions share (one's start_ts is another's commit_ts), some
// around now (a lock's TTL has or has not run out by a current_ts near it), rarely 0 (refused)
// or near the largest.
uint64_t RequestBuilder::Ts() {
  const uint8_t b = Byte();
  if (b < 128) return 1 + b % 12;
  if (b < 240) {
    const int64_t ms = kNowMs + (static_cast<int64_t>(b) - 184) * 500;  // now -28 s .. +27.5 s
    return txn::ComposeTs(static_cast<uint64_t>(ms), b % 3);
  }
  if (b < 250) return 0;
  return std::numeric_limits<uint64_t>::max() - (b - 250);
}

uint64_t RequestBuilder::After(uint64_t ts) {
  const uint8_t b = Byte();
  if (b < 192) return ts + 1 + b % 4;
  return Ts();
}

uint64_t RequestBuilder::TtlMs() {
  switch (Byte() % 6) {
    case 0:
      return 0;  // the default for the transaction's size
    case 1:
      return 1;
    case 2:
      return 3000;
    case 3:
      return 20000;
    case 4:
      return static_cast<uint64_t>(kNowMs);
    default:
      return std::numeric_limits<uint64_t>::max();
  }
}

// Short values are inlined in the lock and the write record; longer ones (over
// txn::kShortValueMax) go to the default column family.
std::string RequestBuilder::TxnValue() {
  switch (Byte() % 4) {
    case 0:
      return "";
    case 1:
      return std::string(txn::kShortValueMax + 1 + Byte() % 64, 'L');
    default:
      return Value();
  }
}

// Small limits (0: the server's default), now and then one above the most a request may ask.
uint32_t RequestBuilder::Limit() {
  const uint8_t b = Byte();
  return b == 0xff ? 20000 : b % 5;
}

txn::pb::TxnRequest RequestBuilder::TxnBody() {
  txn::pb::TxnRequest t;
  switch (Byte() % 12) {
    case 0:
      t.mutable_get()->set_key(Key());
      t.mutable_get()->set_read_ts(Ts());
      break;
    case 1:
      for (int n = Byte() % 4; n >= 0; --n) t.mutable_batch_get()->add_keys(Key());
      t.mutable_batch_get()->set_read_ts(Ts());
      break;
    case 2: {
      auto* op = t.mutable_scan();
      op->set_start(Key());
      op->set_end(Key());
      op->set_read_ts(Ts());
      op->set_limit(Limit());
      break;
    }
    case 3:
    case 4: {  // prewrites twice as often: they make the locks the other steps act on
      auto* op = t.mutable_prewrite();
      for (int n = Byte() % 4; n >= 0; --n) {
        txn::pb::Mutation* m = op->add_mutations();
        m->set_op(static_cast<txn::pb::Mutation::Op>(Byte() % 4));  // 3: no such op
        m->set_key(Key());
        m->set_value(TxnValue());
      }
      op->set_primary(Byte() % 4 == 0 ? Key() : op->mutations(0).key());
      op->set_start_ts(Ts());
      op->set_ttl_ms(TtlMs());
      op->set_txn_size(Byte() % 6);
      const uint8_t mode = Byte();
      if (mode % 4 == 1 || mode % 16 == 3) op->set_one_pc_commit_ts(After(op->start_ts()));
      if (mode % 4 == 2 || mode % 16 == 3) {
        op->set_use_async_commit(true);
        for (int n = Byte() % 4; n > 0; --n) op->add_secondaries(Key());
      }
      // Ignored: the leader computes it (BeforeProposeTxn), unless it is applied as it came.
      if (mode & 0x10) op->set_min_commit_ts(After(op->start_ts()));
      break;
    }
    case 5: {
      auto* op = t.mutable_commit();
      for (int n = Byte() % 3; n >= 0; --n) op->add_keys(Key());
      op->set_start_ts(Ts());
      op->set_commit_ts(After(op->start_ts()));
      break;
    }
    case 6: {
      auto* op = t.mutable_rollback();
      for (int n = Byte() % 3; n >= 0; --n) op->add_keys(Key());
      op->set_start_ts(Ts());
      op->set_protect(Byte() & 1);
      break;
    }
    case 7: {
      auto* op = t.mutable_check_txn_status();
      op->set_primary(Key());
      op->set_start_ts(Ts());
      op->set_current_ts(Ts());
      op->set_force_sync_commit(Byte() & 1);
      break;
    }
    case 8: {
      auto* op = t.mutable_resolve_lock();
      op->set_start_ts(Ts());
      if (Byte() & 1) op->set_commit_ts(After(op->start_ts()));       // else a rollback
      for (int n = Byte() % 4 - 1; n >= 0; --n) op->add_keys(Key());  // none: a range
      op->set_start(Key());
      op->set_end(Key());
      op->set_limit(Limit());
      break;
    }
    case 9: {
      auto* op = t.mutable_heart_beat();
      op->set_primary(Key());
      op->set_start_ts(Ts());
      op->set_ttl_ms(TtlMs());
      break;
    }
    case 10: {
      auto* op = t.mutable_scan_lock();
      op->set_start(Key());
      op->set_end(Key());
      op->set_max_start_ts(Ts());
      op->set_limit(Limit());
      break;
    }
    default: {
      if (Byte() & 1) {
        auto* op = t.mutable_gc();
        op->set_start(Key());
        op->set_end(Key());
        op->set_safe_point(Ts());
        op->set_limit(Limit());
      } else {
        auto* op = t.mutable_check_secondary_locks();
        for (int n = Byte() % 4 - 1; n >= 0; --n) op->add_keys(Key());  // none: refused
        op->set_start_ts(Ts());
      }
      break;
    }
  }
  return t;
}

region::RegionRequest RequestBuilder::Build() {
  region::RegionRequest req;
  region::RequestHeader* h = req.mutable_header();
  const uint8_t flags = Byte();
  h->set_region_id(flags % 32 == 1 ? 8 : 7);
  h->mutable_epoch()->set_conf_ver(2);
  h->mutable_epoch()->set_version(flags % 32 == 2 ? 2 : 3);
  // A few request ids, so that retries meet their first attempt's dedup record.
  if (flags & 0x20) {
    h->set_request_id(1 + Byte() % 3);
    h->set_request_ts_ms(kNowMs);
  }
  h->set_propose_ts_ms(kNowMs);
  if (flags & 0x40) {
    term_ = 1 + (flags >> 7);
    *req.mutable_txn() = TxnBody();
    return req;
  }
  kv::Command cmd = Cmd(/*in_txn=*/false);
  if (cmd.now_ms() == 0) cmd.set_now_ms(Time());
  *req.mutable_kv() = std::move(cmd);
  return req;
}

}  // namespace micedb::fuzz
