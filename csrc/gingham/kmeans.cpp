#include "gingham/kmeans.h"

#include <algorithm>
#include <limits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gingham/kernels/kernels.h"
#include "gingham/omp_compat.h"
#include "gingham/threads.h"

namespace gingham {
namespace {

// Rows per chunk (one thread's unit of work; 192 x 128 floats = 96 KiB stays in L2) and centroid
// panels per block streamed against the chunk: ~256 KiB of panels (32 panels of 16 centroids at
// d = 128), half of a 512 KiB L2 beside the chunk. Measured on Zen 3 (d = 128, 4,096
// centroids, 1 thread, CPU time): 8 panels (64 KiB, the former block) 0.98 s, 2 panels
// (L1-sized) 1.18 s, 32 panels 0.81-0.86 s per 50,000 tokens: each call's per-row arg-max lane
// set-up and reduction, paid once per block, costs more than panels streaming from L2.
constexpr int64_t kChunkRows = 192;
constexpr int64_t kBlockBytes = int64_t{256} << 10;

int64_t block_panels(int64_t dim) {
  const int64_t panel_bytes = dim * kPanelCols * static_cast<int64_t>(sizeof(float));
  return std::max<int64_t>(1, kBlockBytes / panel_bytes);
}

// ||c||^2 / 2 of every centroid: the L2 arg-max <x, c> - ||c||^2 / 2 subtracts it.
std::vector<float> half_norms(const float* centroids, int64_t k, int64_t dim) {
  std::vector<float> half(static_cast<size_t>(k));
  for (int64_t c = 0; c < k; ++c) {
    float norm = 0.0f;
    for (int64_t d = 0; d < dim; ++d) norm += centroids[c * dim + d] * centroids[c * dim + d];
    half[c] = 0.5f * norm;
  }
  return half;
}

// The points of each cluster in index order: cluster c's are order[start[c]:start[c + 1]]
// (a counting sort by cluster id).
void group_by_cluster(const int32_t* ids, int64_t n, int64_t k, std::vector<int64_t>* start,
                      std::vector<int64_t>* order) {
  start->assign(static_cast<size_t>(k + 1), 0);
  for (int64_t i = 0; i < n; ++i) ++(*start)[ids[i] + 1];
  for (int64_t c = 0; c < k; ++c) (*start)[c + 1] += (*start)[c];
  order->resize(static_cast<size_t>(n));
  std::vector<int64_t> fill(start->begin(), start->end() - 1);
  for (int64_t i = 0; i < n; ++i) (*order)[fill[ids[i]]++] = i;
}

void update_centroids(const float* x, int64_t n, int64_t dim, int64_t k, const int32_t* ids,
                      float* centroids) {
  // Each centroid sums its points in index order.
  std::vector<int64_t> start, order;
  group_by_cluster(ids, n, k, &start, &order);
  ParallelErrors errors;
#pragma omp parallel num_threads(get_num_threads())
  {
    std::vector<double> sum;
    errors.run([&] { sum.resize(static_cast<size_t>(dim)); });
#pragma omp for schedule(dynamic, 16)
    for (int64_t c = 0; c < k; ++c) {
      const int64_t count = start[c + 1] - start[c];
      if (count == 0 || static_cast<int64_t>(sum.size()) != dim) continue;  // its allocation failed: rethrown below
      std::fill(sum.begin(), sum.end(), 0.0);
      for (int64_t j = start[c]; j < start[c + 1]; ++j) {
        const float* row = x + order[j] * dim;
        for (int64_t d = 0; d < dim; ++d) sum[d] += row[d];
      }
      for (int64_t d = 0; d < dim; ++d) {
        centroids[c * dim + d] = static_cast<float>(sum[d] / static_cast<double>(count));
      }
    }
  }
  errors.rethrow();
}

}  // namespace

uint64_t splitmix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void sample_without_replacement(int64_t n, int64_t count, uint64_t seed, int64_t* out) {
  // Partial Fisher-Yates over a virtual identity permutation (only swapped slots stored).
  std::unordered_map<int64_t, int64_t> swapped;
  uint64_t state = seed;
  auto at = [&](int64_t i) {
    auto it = swapped.find(i);
    return it == swapped.end() ? i : it->second;
  };
  for (int64_t i = 0; i < count; ++i) {
    const uint64_t span = static_cast<uint64_t>(n - i);
    const int64_t j = i + static_cast<int64_t>(splitmix64(&state) % span);
    const int64_t vi = at(i), vj = at(j);
    swapped[j] = vi;
    out[i] = vj;
  }
}

void assign_nearest(const float* x, int64_t n, int64_t dim, const float* centroids,
                    int64_t n_centroids, int32_t* out_ids) {
  const int64_t n_panels = panel_count(n_centroids);
  std::vector<float> packed(static_cast<size_t>(n_panels * dim * kPanelCols));
  pack_panels(centroids, n_centroids, dim, packed.data());
  std::vector<float> bias(static_cast<size_t>(n_panels * kPanelCols),
                          -std::numeric_limits<float>::infinity());
  const std::vector<float> half = half_norms(centroids, n_centroids, dim);
  for (int64_t c = 0; c < n_centroids; ++c) bias[c] = -half[c];
  const DenseKernels& kernels = gingham::kernels().dense;
  const int64_t n_chunks = (n + kChunkRows - 1) / kChunkRows;
  const int64_t per_block = block_panels(dim);
  ParallelErrors errors;
#pragma omp parallel num_threads(get_num_threads()) if (n_chunks > 1)
  {
    std::vector<float> best;
    errors.run([&] { best.resize(static_cast<size_t>(kChunkRows)); });
#pragma omp for schedule(dynamic, 1)
    for (int64_t chunk = 0; chunk < n_chunks; ++chunk) {
      if (best.empty()) continue;  // its allocation failed: rethrown below
      const int64_t r0 = chunk * kChunkRows, rows = std::min(kChunkRows, n - r0);
      std::fill(best.begin(), best.end(), -std::numeric_limits<float>::infinity());
      for (int64_t i = 0; i < rows; ++i) out_ids[r0 + i] = 0;
      for (int64_t p0 = 0; p0 < n_panels; p0 += per_block) {
        kernels.argmax(x + r0 * dim, rows, dim, packed.data(), bias.data(), p0,
                       std::min(n_panels, p0 + per_block), best.data(), out_ids + r0);
      }
    }
  }
  errors.rethrow();
}

void kmeans_train(const float* x, int64_t n, int64_t dim, const KMeansParams& params,
                  const float* init, float* centroids) {
  const int64_t k = params.n_centroids;
  if (init != nullptr) {
    std::copy(init, init + k * dim, centroids);
  } else {
    std::vector<int64_t> picks(static_cast<size_t>(k));
    sample_without_replacement(n, k, params.seed, picks.data());
    for (int64_t c = 0; c < k; ++c) std::copy(x + picks[c] * dim, x + (picks[c] + 1) * dim,
                                              centroids + c * dim);
  }
  std::vector<int32_t> ids(static_cast<size_t>(n));
  const int64_t m = params.n_neighbors;
  std::vector<int32_t> neighbors(m > 0 && m < k ? static_cast<size_t>(k * m) : 0);
  for (int64_t it = 0; it < params.n_iters; ++it) {
    if (it == 0 || neighbors.empty()) {
      assign_nearest(x, n, dim, centroids, k, ids.data());
    } else {
      centroid_neighbors(centroids, k, dim, m, neighbors.data());
      assign_among_neighbors(x, n, dim, centroids, k, neighbors.data(), m, ids.data());
    }
    update_centroids(x, n, dim, k, ids.data(), centroids);
  }
}

void centroid_neighbors(const float* centroids, int64_t k, int64_t dim, int64_t m,
                        int32_t* out) {
  const int64_t n_panels = panel_count(k), lp = n_panels * kPanelCols;
  std::vector<float> packed(static_cast<size_t>(n_panels * dim * kPanelCols));
  pack_panels(centroids, k, dim, packed.data());
  const std::vector<float> half_norm = half_norms(centroids, k, dim);
  const DenseKernels& kernels = gingham::kernels().dense;
  constexpr int64_t kRows = 32;
  const int64_t n_chunks = (k + kRows - 1) / kRows;
  ParallelErrors errors;
#pragma omp parallel num_threads(get_num_threads()) if (n_chunks > 1)
  {
    std::vector<float> dots;
    std::vector<std::pair<float, int32_t>> cand;  // (-score, id): ascending = nearest first
    errors.run([&] {
      dots.resize(static_cast<size_t>(kRows * lp));
      cand.resize(static_cast<size_t>(k));
    });
#pragma omp for schedule(dynamic, 1)
    for (int64_t chunk = 0; chunk < n_chunks; ++chunk) {
      if (cand.empty()) continue;  // its allocation failed: rethrown below
      const int64_t r0 = chunk * kRows, rows = std::min(kRows, k - r0);
      kernels.dots(centroids + r0 * dim, rows, dim, packed.data(), 0, n_panels, dots.data(), lp);
      for (int64_t r = 0; r < rows; ++r) {
        // score -||a - b||^2 / 2 up to the row's own constant; the centroid itself first
        const float* row = dots.data() + r * lp;
        for (int64_t c = 0; c < k; ++c) {
          const float distance = half_norm[c] - row[c];  // NaN ranks last: a strict order
          cand[c] = {distance == distance ? distance : std::numeric_limits<float>::infinity(),
                     static_cast<int32_t>(c)};
        }
        cand[r0 + r].first = -std::numeric_limits<float>::infinity();
        std::nth_element(cand.begin(), cand.begin() + (m - 1), cand.end());
        int32_t* dst = out + (r0 + r) * m;
        for (int64_t j = 0; j < m; ++j) dst[j] = cand[j].second;
        std::sort(dst, dst + m);  // by id: ties in the assignment then go to the lower id
      }
    }
  }
  errors.rethrow();
}

void assign_among_neighbors(const float* x, int64_t n, int64_t dim, const float* centroids,
                            int64_t k, const int32_t* neighbors, int64_t m, int32_t* ids) {
  std::vector<int64_t> start, order;
  group_by_cluster(ids, n, k, &start, &order);
  const int64_t n_panels = panel_count(m);
  const std::vector<float> half = half_norms(centroids, k, dim);
  const DenseKernels& kernels = gingham::kernels().dense;
  ParallelErrors errors;
#pragma omp parallel num_threads(get_num_threads())
  {
    std::vector<float> cand, packed, bias, rows_buf, best;
    std::vector<int32_t> arg;
    errors.run([&] {
      cand.resize(static_cast<size_t>(m * dim));
      packed.resize(static_cast<size_t>(n_panels * dim * kPanelCols));
      bias.resize(static_cast<size_t>(n_panels * kPanelCols));
      rows_buf.resize(static_cast<size_t>(kChunkRows * dim));
      best.resize(static_cast<size_t>(kChunkRows));
      arg.resize(static_cast<size_t>(kChunkRows));
    });
#pragma omp for schedule(dynamic, 16)
    for (int64_t c = 0; c < k; ++c) {
      if (arg.empty() || start[c] == start[c + 1]) continue;  // allocation failed / empty
      const int32_t* near = neighbors + c * m;
      std::fill(bias.begin(), bias.end(), -std::numeric_limits<float>::infinity());
      for (int64_t j = 0; j < m; ++j) {
        const float* src = centroids + static_cast<int64_t>(near[j]) * dim;
        std::copy(src, src + dim, cand.begin() + j * dim);
        bias[j] = -half[near[j]];
      }
      pack_panels(cand.data(), m, dim, packed.data());
      // the cluster's points, gathered in chunks, against its centroid's neighbours
      const int64_t* members = order.data() + start[c];
      const int64_t n_members = start[c + 1] - start[c];
      for (int64_t i0 = 0; i0 < n_members; i0 += kChunkRows) {
        const int64_t rows = std::min(kChunkRows, n_members - i0);
        for (int64_t i = 0; i < rows; ++i) {
          const float* src = x + members[i0 + i] * dim;
          std::copy(src, src + dim, rows_buf.begin() + i * dim);
        }
        std::fill(best.begin(), best.end(), -std::numeric_limits<float>::infinity());
        std::fill(arg.begin(), arg.end(), 0);
        kernels.argmax(rows_buf.data(), rows, dim, packed.data(), bias.data(), 0, n_panels,
                       best.data(), arg.data());
        for (int64_t i = 0; i < rows; ++i) ids[members[i0 + i]] = near[arg[i]];
      }
    }
  }
  errors.rethrow();
}

}  // namespace gingham
