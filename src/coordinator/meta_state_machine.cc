#include "coordinator/meta_state_machine.h"

#include <algorithm>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "common/coding.h"
#include "common/logging.h"
#include "store/keys.h"

namespace micedb::coordinator {
namespace {

using storage::Cf;

std::string MetaKey(char kind, std::string_view rest = {}) {
  std::string k(store::kMetaRangeStart);
  k.push_back(kind);
  k.append(rest);
  return k;
}

std::string IdKey(char kind, uint64_t id) {
  std::string be(8, '\0');
  for (int i = 0; i < 8; ++i) be[i] = static_cast<char>(id >> (56 - 8 * i));
  return MetaKey(kind, be);
}

// The E index key of a region ending at `end_key` (empty: +infinity).
std::string EndKey(std::string_view end_key) {
  if (end_key.empty()) return MetaKey('E', "\x02");
  std::string k = MetaKey('E', "\x01");
  k.append(end_key);
  return k;
}

std::string EncodeU64(uint64_t v) {
  std::string s;
  PutFixed64(&s, v);
  return s;
}

uint64_t DecodeU64(std::string_view s) { return s.size() == 8 ? DecodeFixed64(s.data()) : 0; }

bool InRange(const store::RegionDescriptor& r, std::string_view key) {
  return key >= r.start_key() && (r.end_key().empty() || key < r.end_key());
}

// [start, end) of `a` and `b` overlap (empty end: +infinity).
bool Overlaps(const store::RegionDescriptor& a, const store::RegionDescriptor& b) {
  const bool a_before_b_ends = b.end_key().empty() || a.start_key() < b.end_key();
  const bool b_before_a_ends = a.end_key().empty() || b.start_key() < a.end_key();
  return a_before_b_ends && b_before_a_ends;
}

[[noreturn]] void Fatal(const std::string& what) {
  GetLogger("coordinator")->critical("meta state: {}", what);
  std::abort();
}

// Reads the meta state: the engine (at a snapshot, or latest) seen through the writes an apply
// round has made so far (`overlay`, null for plain reads). A value of nullopt in the overlay
// is a deletion.
class View {
 public:
  using Overlay = std::map<std::string, std::optional<std::string>, std::less<>>;

  View(storage::Engine* engine, const storage::Snapshot* snapshot, const Overlay* overlay)
      : engine_(engine), snapshot_(snapshot), overlay_(overlay) {}

  std::optional<std::string> Get(std::string_view key) const {
    if (overlay_) {
      if (auto it = overlay_->find(key); it != overlay_->end()) return it->second;
    }
    storage::ReadOptions ro;
    ro.snapshot = snapshot_;
    auto v = engine_->Get(Cf::kDefault, key, ro);
    if (v.ok()) return std::move(*v);
    if (v.status().code() != StatusCode::kNotFound) Fatal("read failed: " + v.status().ToString());
    return std::nullopt;
  }

  // Calls fn(key, value) for the keys in [lo, hi) in order until it returns false.
  template <typename Fn>
  void Scan(const std::string& lo, const std::string& hi, Fn fn) const {
    storage::ReadOptions ro;
    ro.snapshot = snapshot_;
    ro.lower_bound = lo;
    ro.upper_bound = hi;
    auto it = engine_->NewIterator(Cf::kDefault, ro);
    it->Seek(lo);
    auto ov = overlay_ ? overlay_->lower_bound(lo) : Overlay::const_iterator{};
    auto ov_end = overlay_ ? overlay_->lower_bound(hi) : Overlay::const_iterator{};
    while (true) {
      const bool have_e = it->Valid();
      const bool have_o = overlay_ && ov != ov_end;
      if (!have_e && !have_o) break;
      if (have_o && (!have_e || ov->first <= it->key())) {
        if (have_e && ov->first == it->key()) it->Next();
        if (ov->second && !fn(ov->first, *ov->second)) return;
        ++ov;
      } else {
        if (!fn(it->key(), it->value())) return;
        it->Next();
      }
    }
    if (!it->status().ok()) Fatal("scan failed: " + it->status().ToString());
  }

  MetaState State() const {
    MetaState st;
    if (auto c = Get(MetaKey('C'))) {
      if (!st.mutable_cluster()->ParseFromString(*c)) Fatal("cluster record does not parse");
      st.set_bootstrapped(true);
    }
    if (auto v = Get(MetaKey('I'))) st.set_id_high_water(DecodeU64(*v));
    if (auto v = Get(MetaKey('T'))) st.set_tso_bound_ms(static_cast<int64_t>(DecodeU64(*v)));
    if (auto v = Get(MetaKey('G'))) st.set_gc_safe_point(DecodeU64(*v));
    Scan(MetaKey('V'), MetaKey('W'), [&](std::string_view k, std::string_view v) {
      (*st.mutable_settings())[std::string(k.substr(store::kMetaRangeStart.size() + 1))] =
          std::string(v);
      return true;
    });
    return st;
  }

  std::optional<RegionMeta> Region(uint64_t id) const {
    auto v = Get(IdKey('R', id));
    if (!v) return std::nullopt;
    RegionMeta r;
    if (!r.ParseFromString(*v)) Fatal(fmt::format("region {} does not parse", id));
    return r;
  }

  // The regions whose range meets [start, end) (empty end: +infinity), in key order, at most
  // `limit`.
  std::vector<RegionMeta> RegionsFrom(std::string_view start, std::string_view end,
                                      size_t limit) const {
    std::vector<RegionMeta> out;
    // The first region that ends above `start`: E keys sort by end key, +infinity last.
    const std::string lo = start.empty() ? MetaKey('E', "\x01") : EndKey(start);
    Scan(lo, MetaKey('F'), [&](std::string_view k, std::string_view v) {
      if (k == EndKey(start) && !start.empty()) return true;  // ends at start: not in it
      auto r = Region(DecodeU64(v));
      if (!r) Fatal("the region index names a region that is not stored");
      if (!end.empty() && r->region().start_key() >= end) return false;
      out.push_back(std::move(*r));
      return out.size() < limit;
    });
    return out;
  }

  std::vector<StoreMeta> Stores() const {
    std::vector<StoreMeta> out;
    Scan(MetaKey('S'), MetaKey('T'), [&](std::string_view, std::string_view v) {
      StoreMeta s;
      if (!s.ParseFromArray(v.data(), static_cast<int>(v.size()))) Fatal("store does not parse");
      out.push_back(std::move(s));
      return true;
    });
    return out;
  }

 private:
  storage::Engine* engine_;
  const storage::Snapshot* snapshot_;
  const Overlay* overlay_;
};

MetaResult Refuse(std::string why) {
  MetaResult r;
  r.set_error(std::move(why));
  return r;
}

MetaResult Read(const View& view, const MetaCommand& cmd) {
  MetaResult r;
  switch (cmd.cmd_case()) {
    case MetaCommand::kGetState:
      *r.mutable_state() = view.State();
      return r;
    case MetaCommand::kGetRegionByKey: {
      auto found = view.RegionsFrom(cmd.get_region_by_key().key(), {}, 1);
      if (!found.empty() && InRange(found[0].region(), cmd.get_region_by_key().key())) {
        *r.add_regions() = std::move(found[0]);
      }
      return r;
    }
    case MetaCommand::kGetRegionById:
      if (auto reg = view.Region(cmd.get_region_by_id().id())) *r.add_regions() = std::move(*reg);
      return r;
    case MetaCommand::kScanRegions: {
      const ScanRegions& s = cmd.scan_regions();
      uint32_t limit = s.limit() == 0 ? kMaxScanRegions : std::min(s.limit(), kMaxScanRegions);
      for (auto& reg : view.RegionsFrom(s.start_key(), s.end_key(), limit)) {
        *r.add_regions() = std::move(reg);
      }
      return r;
    }
    case MetaCommand::kGetStores:
      for (auto& s : view.Stores()) *r.add_stores() = std::move(s);
      return r;
    default:
      return Refuse("not a read");
  }
}

class MetaApplyRound final : public store::ApplyRound {
 public:
  MetaApplyRound(storage::Engine* engine, storage::WriteBatch* wb)
      : wb_(wb), view_(engine, nullptr, &overlay_) {}

  kv::CommandResult ApplyKv(const kv::Command&, LogIndex, bool) override {
    kv::CommandResult r;
    r.mutable_error()->set_code(kv::KvError::INVALID_ARGUMENT);
    r.mutable_error()->set_message("the coordinator's region holds no key-value data");
    return r;
  }

  MetaResult ApplyMeta(const MetaCommand& cmd, LogIndex index) override {
    (void)index;
    MetaResult r;
    switch (cmd.cmd_case()) {
      case MetaCommand::kBootstrap: {
        // The first bootstrap wins; later ones (a retry, another would-be first leader) see
        // the cluster that exists.
        if (!view_.Get(MetaKey('C'))) {
          Put(MetaKey('C'), cmd.bootstrap().cluster().SerializeAsString());
          RaiseIds(cmd.bootstrap().first_id());
        }
        break;
      }
      case MetaCommand::kPutStore: {
        const StoreMeta& s = cmd.put_store().store();
        if (s.id() == 0) return Refuse("a store needs an id");
        if (auto old = view_.Get(IdKey('S', s.id()))) {
          StoreMeta prev;
          prev.ParseFromString(*old);
          if (prev.state() == STORE_TOMBSTONE && s.state() != STORE_TOMBSTONE) {
            return Refuse(
                fmt::format("store {} was removed (tombstone); its id is not reused", s.id()));
          }
        }
        Put(IdKey('S', s.id()), s.SerializeAsString());
        RaiseIds(s.id() + 1);
        break;
      }
      case MetaCommand::kPutRegion: {
        if (!PutRegion(cmd.put_region().region())) r.set_stale(true);
        break;
      }
      case MetaCommand::kAllocIds: {
        const uint64_t count = cmd.alloc_ids().count();
        if (count == 0 || count > kMaxAllocIds) {
          return Refuse(fmt::format("AllocIds count must be 1..{}", kMaxAllocIds));
        }
        const uint64_t end = IdHighWater() + count;
        Put(MetaKey('I'), EncodeU64(end));
        r.set_ids_end(end);
        break;
      }
      case MetaCommand::kSaveTsoBound: {
        const int64_t bound = cmd.save_tso_bound().bound_ms();
        auto cur = view_.Get(MetaKey('T'));
        if (!cur || static_cast<int64_t>(DecodeU64(*cur)) < bound) {
          Put(MetaKey('T'), EncodeU64(static_cast<uint64_t>(bound)));
        }
        break;
      }
      case MetaCommand::kSetGcSafePoint: {
        auto cur = view_.Get(MetaKey('G'));
        if (!cur || DecodeU64(*cur) < cmd.set_gc_safe_point().safe_point()) {
          Put(MetaKey('G'), EncodeU64(cmd.set_gc_safe_point().safe_point()));
        }
        break;
      }
      case MetaCommand::kSetSetting: {
        const SetSetting& s = cmd.set_setting();
        if (s.name().empty() || s.name().size() > 128) return Refuse("a setting needs a name");
        if (s.value().size() > 4096) return Refuse("a setting's value is at most 4096 bytes");
        if (s.value().empty()) {
          Delete(MetaKey('V', s.name()));
        } else {
          Put(MetaKey('V', s.name()), s.value());
        }
        break;
      }
      default:
        return Read(view_, cmd);
    }
    *r.mutable_state() = view_.State();
    return r;
  }

 private:
  void Put(std::string key, std::string value) {
    wb_->Put(Cf::kDefault, key, value);
    overlay_[std::move(key)] = std::move(value);
  }
  void Delete(std::string key) {
    wb_->Delete(Cf::kDefault, key);
    overlay_[std::move(key)] = std::nullopt;
  }
  uint64_t IdHighWater() const {
    auto v = view_.Get(MetaKey('I'));
    return v ? DecodeU64(*v) : 1;
  }
  void RaiseIds(uint64_t at_least) {
    if (IdHighWater() < at_least) Put(MetaKey('I'), EncodeU64(at_least));
  }

  // False when the region, or a region overlapping it, is known with a newer epoch.
  bool PutRegion(const RegionMeta& reg) {
    const store::RegionDescriptor& d = reg.region();
    if (d.id() == 0) return false;
    auto old = view_.Region(d.id());
    if (old && EpochOlder(d.epoch(), old->region().epoch())) return false;
    // Every other stored region the new range meets: newer ones make this report stale,
    // older ones were split or merged away.
    std::vector<RegionMeta> overlapping;
    for (auto& o : view_.RegionsFrom(d.start_key(), d.end_key(), SIZE_MAX)) {
      if (o.region().id() == d.id() || !Overlaps(o.region(), d)) continue;
      if (o.region().epoch().version() > d.epoch().version()) return false;
      overlapping.push_back(std::move(o));
    }
    for (const auto& o : overlapping) {
      Delete(IdKey('R', o.region().id()));
      Delete(EndKey(o.region().end_key()));
    }
    if (old) Delete(EndKey(old->region().end_key()));
    Put(IdKey('R', d.id()), reg.SerializeAsString());
    Put(EndKey(d.end_key()), EncodeU64(d.id()));
    return true;
  }

  storage::WriteBatch* wb_;
  View::Overlay overlay_;
  View view_;
};

}  // namespace

bool EpochOlder(const store::RegionEpoch& a, const store::RegionEpoch& b) {
  return a.version() < b.version() || a.conf_ver() < b.conf_ver();
}

std::unique_ptr<store::ApplyRound> MetaStateMachine::BeginRound(const store::RegionDescriptor&,
                                                                storage::Engine* engine,
                                                                storage::WriteBatch* wb) {
  return std::make_unique<MetaApplyRound>(engine, wb);
}

MetaResult MetaStateMachine::ReadMeta(const store::RegionDescriptor&, storage::Engine* engine,
                                      const storage::Snapshot* snapshot, const MetaCommand& cmd) {
  return Read(View(engine, snapshot, nullptr), cmd);
}

kv::CommandResult MetaStateMachine::ReadKv(const store::RegionDescriptor&, storage::Engine*,
                                           const storage::Snapshot*, const kv::Command&) {
  kv::CommandResult r;
  r.mutable_error()->set_code(kv::KvError::INVALID_ARGUMENT);
  r.mutable_error()->set_message("the coordinator's region holds no key-value data");
  return r;
}

void MetaStateMachine::EngineKeys(const kv::Command&, std::vector<std::string>*) const {}

std::unique_ptr<store::ApplyRound> NodeStateMachine::BeginRound(
    const store::RegionDescriptor& region, storage::Engine* engine, storage::WriteBatch* wb) {
  return (store::IsMetaRegion(region.id()) ? meta_ : data_)->BeginRound(region, engine, wb);
}

kv::CommandResult NodeStateMachine::ReadKv(const store::RegionDescriptor& region,
                                           storage::Engine* engine,
                                           const storage::Snapshot* snapshot,
                                           const kv::Command& cmd) {
  return (store::IsMetaRegion(region.id()) ? meta_ : data_)->ReadKv(region, engine, snapshot, cmd);
}

MetaResult NodeStateMachine::ReadMeta(const store::RegionDescriptor& region,
                                      storage::Engine* engine, const storage::Snapshot* snapshot,
                                      const MetaCommand& cmd) {
  return (store::IsMetaRegion(region.id()) ? meta_ : data_)
      ->ReadMeta(region, engine, snapshot, cmd);
}

txn::pb::TxnResponse NodeStateMachine::ReadTxn(const store::RegionDescriptor& region,
                                               storage::Engine* engine,
                                               const storage::Snapshot* snapshot,
                                               const txn::pb::TxnRequest& req) {
  return (store::IsMetaRegion(region.id()) ? meta_ : data_)->ReadTxn(region, engine, snapshot, req);
}

}  // namespace micedb::coordinator
