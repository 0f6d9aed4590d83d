#include "gingham/threads.h"

#include <atomic>

#include "gingham/omp_compat.h"

namespace gingham {
namespace {
std::atomic<int>& thread_setting() {
  static std::atomic<int> n{omp_get_max_threads()};
  return n;
}
}  // namespace

// A serial build keeps reporting 1: the setting could not change how many threads run.
void set_num_threads(int n_threads) {
  thread_setting().store(n_threads < 1 || !kHasOpenMP ? 1 : n_threads);
}

int get_num_threads() { return thread_setting().load(); }

}  // namespace gingham
