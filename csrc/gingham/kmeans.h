// k-means (Lloyd) for the residual codec's centroids, and nearest-centroid assignment.
//
//   x:         n x dim float32, row-major (a sample of token vectors)
//   centroids: n_centroids x dim float32, row-major
//   assign(x_i) = argmin_c ||x_i - c||^2 = argmax_c (<x_i, c> - ||c||^2 / 2)
//
// The assignment is a blocked matrix multiply plus arg-max (kernels/dense_*.cpp): the
// centroids are packed once into column panels with the bias -||c||^2/2, rows are processed in
// chunks that stay in L2 while a block of panels streams through. Ties go to the lower centroid.
//
// Determinism: initial centroids are n_centroids distinct rows drawn with a seeded splitmix64
// generator; each point's assignment is computed by one thread, and each centroid's mean is
// summed in float64 over its points in index order, so results do not depend on the thread
// count. An empty cluster keeps its previous centroid (duplicate vectors can leave a cluster
// empty forever; it then stays a copy of some data point and costs nothing but a code value).
#pragma once

#include <cstdint>

namespace gingham {

// Mirrors the Python keywords of gingham.Index.create / _core.kmeans_fit.
struct KMeansParams {
  int64_t n_centroids = 0;  // 1 <= n_centroids <= n
  int64_t n_iters = 10;     // Lloyd iterations (0: initial centroids only)
  uint64_t seed = 0;
  // 0: every pass compares each point with every centroid. m > 0 (and < n_centroids): after
  // the first pass, a point is compared only with the m centroids nearest to the one it was
  // assigned to (centroid_neighbors, recomputed every pass), ~n_centroids / m times less work.
  int64_t n_neighbors = 0;
};

// Trains centroids (n_centroids x dim) on x (n x dim). `init` (n_centroids x dim) replaces the
// random initialisation when not null. Parallel over points and over centroids.
void kmeans_train(const float* x, int64_t n, int64_t dim, const KMeansParams& params,
                  const float* init, float* centroids);

// Nearest centroid of every row of x: out_ids (n) in [0, n_centroids). Parallel over rows.
void assign_nearest(const float* x, int64_t n, int64_t dim, const float* centroids,
                    int64_t n_centroids, int32_t* out_ids);

// The m nearest centroids (L2) of every centroid, the centroid itself among them: out
// (n_centroids x m) int32, each row in ascending id order. Ties go to the lower id.
void centroid_neighbors(const float* centroids, int64_t n_centroids, int64_t dim, int64_t m,
                        int32_t* out);

// Lloyd assignment restricted to neighbours: each point i is moved to the nearest of
// neighbors[ids[i] * m .. + m) (ties: the lower id). ids (n) in / out.
void assign_among_neighbors(const float* x, int64_t n, int64_t dim, const float* centroids,
                            int64_t n_centroids, const int32_t* neighbors, int64_t m,
                            int32_t* ids);

// The seeded generator used for sampling (exposed so Python-side sampling could match C++).
uint64_t splitmix64(uint64_t* state);

// Writes `count` distinct indices drawn uniformly from [0, n) (count <= n) in draw order.
void sample_without_replacement(int64_t n, int64_t count, uint64_t seed, int64_t* out);

}  // namespace gingham
