// A per-thread pool of reusable resources (pipes, buffers) handed out as RAII leases.
// Used from one thread only (each worker owns its pools, so the data path takes no lock); only
// the counters leased() and idle() may be read from other threads.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace zcproxy {

// Resource: move-only, with `bool reusable() const` (may it go back to the pool?).
template <class Resource>
class pool {
 public:
  // make: creates a resource, or nullopt when the system refuses (e.g. out of fds).
  // max_leased: leases out at once, past which lease() fails. keep_idle: resources kept for reuse.
  pool(std::function<std::optional<Resource>()> make, std::size_t max_leased, std::size_t keep_idle)
      : make_(std::move(make)), max_leased_(max_leased), keep_idle_(keep_idle) {}
  pool(const pool&) = delete;
  pool& operator=(const pool&) = delete;

  class lease {
   public:
    lease() = default;
    lease(lease&& o) noexcept
        : pool_(std::exchange(o.pool_, nullptr)), r_(std::exchange(o.r_, nullptr)) {}
    lease& operator=(lease&& o) noexcept {
      if (this != &o) {
        reset();
        pool_ = std::exchange(o.pool_, nullptr);
        r_ = std::exchange(o.r_, nullptr);
      }
      return *this;
    }
    ~lease() { reset(); }

    explicit operator bool() const { return pool_ != nullptr; }
    Resource& operator*() { return *r_; }
    Resource* operator->() { return r_; }
    const Resource* operator->() const { return r_; }
    // Give the resource back now (pooled if reusable, destroyed otherwise).
    void reset() {
      if (pool_) std::exchange(pool_, nullptr)->give_back(std::exchange(r_, nullptr));
    }

   private:
    friend class pool;
    lease(pool* p, Resource* r) : pool_(p), r_(r) {}
    // Two pointers: a lease is held by every busy direction of every connection. The resource
    // lives on the heap, owned by the pool (idle) or by the lease (leased).
    pool* pool_ = nullptr;
    Resource* r_ = nullptr;
  };

  // A resource, or an empty lease when max_leased are out or make() failed.
  lease get() {
    if (leased_.load(std::memory_order_relaxed) >= max_leased_) return {};
    std::unique_ptr<Resource> r;
    if (!idle_.empty()) {
      r = std::move(idle_.back());
      idle_.pop_back();
      idle_count_.store(idle_.size(), std::memory_order_relaxed);
    } else if (auto made = make_()) {
      r = std::make_unique<Resource>(std::move(*made));
    } else {
      return {};
    }
    leased_.store(leased_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return lease(this, r.release());
  }

  std::size_t leased() const { return leased_.load(std::memory_order_relaxed); }
  std::size_t idle() const { return idle_count_.load(std::memory_order_relaxed); }

 private:
  void give_back(Resource* given) {
    std::unique_ptr<Resource> r(given);
    leased_.store(leased_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    if (r->reusable() && idle_.size() < keep_idle_) {
      idle_.push_back(std::move(r));
      idle_count_.store(idle_.size(), std::memory_order_relaxed);
    }
  }

  std::function<std::optional<Resource>()> make_;
  std::size_t max_leased_;
  std::size_t keep_idle_;
  // Written by the owning thread only (plain load+store, no locked instruction); atomic so that
  // other threads may read them.
  std::atomic<std::size_t> leased_{0};
  std::atomic<std::size_t> idle_count_{0};
  std::vector<std::unique_ptr<Resource>> idle_;
};

}  // namespace zcproxy
