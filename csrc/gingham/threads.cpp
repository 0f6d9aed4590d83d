#include "gingham/threads.h"

#include <omp.h>

#include <atomic>

namespace gingham {
namespace {
std::atomic<int>& thread_setting() {
  static std::atomic<int> n{omp_get_max_threads()};
  return n;
}
}  // namespace

void set_num_threads(int n_threads) { thread_setting().store(n_threads < 1 ? 1 : n_threads); }

int get_num_threads() { return thread_setting().load(); }

}  // namespace gingham
