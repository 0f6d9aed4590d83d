#include "gingham/codec.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gingham/half.h"
#include "gingham/kmeans.h"
#include "gingham/omp_compat.h"
#include "gingham/threads.h"

namespace gingham {
namespace {

// numpy.quantile(values, q) with linear interpolation; values sorted ascending, n >= 1.
double quantile_sorted(const std::vector<float>& values, double q) {
  const double pos = q * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return values[lo] + frac * (static_cast<double>(values[hi]) - values[lo]);
}

// Lloyd-Max refinement of one dimension's quantizer on its sorted sample values (prefix holds
// the running sums, prefix[i] = sum of values[0..i)). A value v lies in bucket b when
// cutoffs[b-1] < v <= cutoffs[b]; an empty bucket keeps its weight.
void lloyd_max(const std::vector<float>& values, const std::vector<double>& prefix,
               int64_t n_buckets, float* cutoffs, float* weights) {
  std::vector<size_t> bounds(static_cast<size_t>(n_buckets + 1));
  bounds[0] = 0;
  bounds[n_buckets] = values.size();
  for (int iter = 0; iter < kLloydIters; ++iter) {
    for (int64_t j = 0; j + 1 < n_buckets; ++j) {
      bounds[j + 1] = static_cast<size_t>(
          std::upper_bound(values.begin(), values.end(), cutoffs[j]) - values.begin());
    }
    for (int64_t b = 0; b < n_buckets; ++b) {
      const size_t lo = bounds[b], hi = bounds[b + 1];
      if (hi > lo) weights[b] = static_cast<float>((prefix[hi] - prefix[lo]) / double(hi - lo));
    }
    bool moved = false;
    for (int64_t j = 0; j + 1 < n_buckets; ++j) {
      const float mid = static_cast<float>(0.5 * (double(weights[j]) + weights[j + 1]));
      moved |= mid != cutoffs[j];
      cutoffs[j] = mid;
    }
    if (!moved) break;
  }
}

// |x| / |y| as float16, 1 when y = 0 (see codec.h); capped at the largest finite float16 so
// that a reconstruction near the origin never stores an infinite scale.
uint16_t norm_scale(const float* x, const float* y, int64_t dim) {
  constexpr double kMaxHalf = 65504.0;
  double xx = 0.0, yy = 0.0;
  for (int64_t d = 0; d < dim; ++d) {
    xx += double(x[d]) * x[d];
    yy += double(y[d]) * y[d];
  }
  const double ratio = yy > 0.0 ? std::min(std::sqrt(xx / yy), kMaxHalf) : 1.0;
  return float_to_half(static_cast<float>(ratio));
}

}  // namespace

void fit_buckets(const float* x, int64_t n, const int32_t* codes, const CodecView& codec,
                 float* cutoffs, float* weights) {
  const int64_t dim = codec.dim, n_buckets = int64_t{1} << codec.nbits;
  ParallelErrors errors;
#pragma omp parallel num_threads(get_num_threads())
  {
    std::vector<float> values;
    std::vector<double> prefix;
    errors.run([&] {
      values.resize(static_cast<size_t>(n));
      prefix.resize(static_cast<size_t>(n + 1));
    });
#pragma omp for schedule(dynamic, 1)
    for (int64_t d = 0; d < dim; ++d) {
      if (prefix.empty()) continue;  // its allocation failed: rethrown below
      for (int64_t i = 0; i < n; ++i) {
        values[i] = x[i * dim + d] - codec.centroids[codes[i] * dim + d];
      }
      std::sort(values.begin(), values.end());
      for (int64_t j = 0; j + 1 < n_buckets; ++j) {
        cutoffs[d * (n_buckets - 1) + j] = static_cast<float>(
            quantile_sorted(values, static_cast<double>(j + 1) / n_buckets));
      }
      for (int64_t b = 0; b < n_buckets; ++b) {
        weights[d * n_buckets + b] = static_cast<float>(
            quantile_sorted(values, (static_cast<double>(b) + 0.5) / n_buckets));
      }
      prefix[0] = 0.0;
      for (int64_t i = 0; i < n; ++i) prefix[i + 1] = prefix[i] + values[i];
      errors.run([&] {
        lloyd_max(values, prefix, n_buckets, cutoffs + d * (n_buckets - 1),
                  weights + d * n_buckets);
      });
    }
  }
  errors.rethrow();
}

void encode(const CodecView& codec, const float* x, int64_t n, void* codes, uint8_t* residuals,
            uint16_t* scales) {
  const int64_t dim = codec.dim, row_bytes = residual_row_bytes(dim, codec.nbits);
  const int64_t n_cut = (int64_t{1} << codec.nbits) - 1;
  const int code_bytes = code_bytes_for(codec.n_centroids);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  assign_nearest(x, n, dim, codec.centroids, codec.n_centroids, ids.data());
  ParallelErrors errors;
#pragma omp parallel num_threads(get_num_threads()) if (n > 1024)
  {
    std::vector<float> y;
    errors.run([&] { y.resize(static_cast<size_t>(dim)); });
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      if (static_cast<int64_t>(y.size()) != dim) continue;  // its allocation failed: rethrown below
      const int32_t c = ids[i];
      if (code_bytes == 2) static_cast<uint16_t*>(codes)[i] = static_cast<uint16_t>(c);
      else static_cast<uint32_t*>(codes)[i] = static_cast<uint32_t>(c);
      uint8_t* row = residuals + i * row_bytes;
      std::fill(row, row + row_bytes, uint8_t{0});
      const float* centroid = codec.centroids + static_cast<int64_t>(c) * dim;
      for (int64_t d = 0; d < dim; ++d) {
        const float r = x[i * dim + d] - centroid[d];
        const float* cut = codec.cutoffs + d * n_cut;
        int bucket = 0;
        for (int64_t j = 0; j < n_cut; ++j) bucket += cut[j] < r;
        const int64_t bit = d * codec.nbits;
        row[bit >> 3] |= static_cast<uint8_t>(bucket << (8 - codec.nbits - (bit & 7)));
        y[d] = centroid[d] + codec.weights[d * (n_cut + 1) + bucket];
      }
      scales[i] = norm_scale(x + i * dim, y.data(), dim);
    }
  }
  errors.rethrow();
}

void centroid_inv_norms(const CodecView& codec, float* out) {
  const int64_t dim = codec.dim;
  for (int64_t c = 0; c < codec.n_centroids; ++c) {
    const float* row = codec.centroids + c * dim;
    double sq = 0.0;
    for (int64_t d = 0; d < dim; ++d) sq += double(row[d]) * row[d];
    out[c] = sq > 0.0 ? static_cast<float>(1.0 / std::sqrt(sq)) : 0.0f;
  }
}

void decode(const CodecView& codec, const void* codes, int code_bytes, const uint8_t* residuals,
            const uint16_t* scales, int64_t n, float* out) {
  const int64_t dim = codec.dim, row_bytes = residual_row_bytes(dim, codec.nbits);
  const int64_t n_buckets = int64_t{1} << codec.nbits;
#pragma omp parallel for num_threads(get_num_threads()) schedule(static) if (n > 1024)
  for (int64_t i = 0; i < n; ++i) {
    const float* centroid = codec.centroids + code_at(codes, code_bytes, i) * dim;
    const uint8_t* row = residuals + i * row_bytes;
    const float scale = scales != nullptr ? half_to_float(scales[i]) : 1.0f;
    for (int64_t d = 0; d < dim; ++d) {
      const int bucket = bucket_at(row, d, codec.nbits);
      out[i * dim + d] = scale * (centroid[d] + codec.weights[d * n_buckets + bucket]);
    }
  }
}

}  // namespace gingham
