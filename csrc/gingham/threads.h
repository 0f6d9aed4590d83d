// Thread count for every OpenMP region in gingham (one setting, never nested parallelism), and
// the rule for exceptions inside a region.
#pragma once

#include <atomic>
#include <exception>
#include <mutex>

namespace gingham {

void set_num_threads(int n_threads);  // n_threads >= 1
int get_num_threads();

// An exception must never leave an OpenMP region (the runtime would terminate the process), so
// every region runs its throwing work (allocations included) through run() and the caller
// calls rethrow() after the region: the first exception is kept, later work is skipped.
class ParallelErrors {
 public:
  template <typename Fn>
  void run(Fn&& fn) noexcept {
    if (failed_.load(std::memory_order_relaxed)) return;
    try {
      fn();
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
      failed_.store(true, std::memory_order_relaxed);
    }
  }
  void rethrow() const {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::exception_ptr error_;
};

}  // namespace gingham
