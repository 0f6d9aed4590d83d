// Thread count for every OpenMP region in gingham (one setting, never nested parallelism).
#pragma once

namespace gingham {

void set_num_threads(int n_threads);  // n_threads >= 1
int get_num_threads();

}  // namespace gingham
