// Iterator: an ordered cursor over one column family of an Engine, within optional bounds.
//
// An iterator sees one consistent view of its column family: the state when it was created,
// or the snapshot it was created from. Writes made afterwards are invisible to it.
//
// Bounds: a lower bound is inclusive, an upper bound exclusive. Seek(t) with t below the
// lower bound lands on the first key in bounds; SeekForPrev(t) with t at or above the upper
// bound lands on the last key in bounds. Keys outside the bounds are never visible.
//
// Ownership: the caller owns the iterator and must destroy it before the Engine it came from.
// Thread-compatible: one iterator must not be used by two threads at once; different
// iterators over one engine may be used concurrently.
#pragma once

#include <memory>
#include <string_view>

#include "common/status.h"

namespace micedb::storage {

class Iterator {
 public:
  Iterator() = default;
  Iterator(const Iterator&) = delete;
  Iterator& operator=(const Iterator&) = delete;
  virtual ~Iterator() = default;

  // True when positioned on a key. False past either end or after an error; status() tells
  // which.
  virtual bool Valid() const = 0;

  virtual void SeekToFirst() = 0;
  virtual void SeekToLast() = 0;
  // First key >= target.
  virtual void Seek(std::string_view target) = 0;
  // Last key <= target.
  virtual void SeekForPrev(std::string_view target) = 0;
  // Require Valid().
  virtual void Next() = 0;
  virtual void Prev() = 0;

  // Require Valid(). The views stay good until the iterator moves or is destroyed.
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;

  // OK unless the iterator met an error (IoError, Corruption, InvalidArgument for a bad
  // snapshot or column family); then Valid() is false.
  virtual Status status() const = 0;
};

// An iterator that is never Valid() and whose status() is `status` (not OK).
std::unique_ptr<Iterator> NewErrorIterator(Status status);

}  // namespace micedb::storage
