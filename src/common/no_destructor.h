// NoDestructor<T>: holds a T that is constructed in place and never destroyed. For
// process-wide singletons that other threads, or other static objects' destructors, may still
// use while the process exits:
//   static NoDestructor<Registry> registry;
//   return registry.get();
// Thread-safety is that of T; constructing it as a function-local static is thread-safe.
#pragma once

#include <new>
#include <utility>

namespace micedb {

template <typename T>
class NoDestructor {
 public:
  template <typename... Args>
  explicit NoDestructor(Args&&... args) {
    ::new (static_cast<void*>(storage_)) T(std::forward<Args>(args)...);
  }
  NoDestructor(const NoDestructor&) = delete;
  NoDestructor& operator=(const NoDestructor&) = delete;
  ~NoDestructor() = default;  // deliberately leaves the T alive

  T* get() { return std::launder(reinterpret_cast<T*>(storage_)); }
  const T* get() const { return std::launder(reinterpret_cast<const T*>(storage_)); }
  T& operator*() { return *get(); }
  T* operator->() { return get(); }

 private:
  alignas(T) unsigned char storage_[sizeof(T)];
};

}  // namespace micedb
