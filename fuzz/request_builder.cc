#include "request_builder.h"

#include <limits>

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
  kv::Command cmd = Cmd(/*in_txn=*/false);
  if (cmd.now_ms() == 0) cmd.set_now_ms(Time());
  *req.mutable_kv() = std::move(cmd);
  return req;
}

}  // namespace micedb::fuzz
