#include "gingham/plaid.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <utility>
#include <vector>

#include "gingham/half.h"
#include "gingham/kernels/kernels.h"
#include "gingham/omp_compat.h"
#include "gingham/threads.h"
#include "gingham/topk.h"

#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#include <xmmintrin.h>
#endif

namespace gingham {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int64_t kCentroidChunk = 256;  // centroid rows per parallel unit of stage 1
// What a query row adds to the pruned approximate score of a document none of whose unpruned
// tokens reaches it (plaid.h, stage 3).
constexpr float kPrunedRowScore = 0.0f;

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// Query-side tables of stage 1 (layout in plaid_lut_kernels.h).
struct QueryTables {
  int64_t lq = 0, lp = 0, row_bytes = 0;
  std::vector<float> cs;   // n_centroids x lp: <q_i, centroid>, the exact stage's base
  std::vector<float> cos;  // n_centroids x lp: cs / |centroid|, stages 2-3 (empty: not built)
  std::vector<float> lut;  // row_bytes x 256 x lp
};

// Cosines of the query rows with every centroid, from cs and the centroids' inverse norms.
void build_cosines(const CodecView& codec, bool parallel, QueryTables* t) {
  const int64_t lp = t->lp;
  t->cos.resize(t->cs.size());
#pragma omp parallel for num_threads(get_num_threads()) schedule(static) if (parallel)
  for (int64_t c = 0; c < codec.n_centroids; ++c) {
    const float s = codec.inv_norms[c];
    const float* src = t->cs.data() + c * lp;
    float* dst = t->cos.data() + c * lp;
    for (int64_t i = 0; i < lp; ++i) dst[i] = src[i] * s;
  }
}

void build_tables(const CodecView& codec, const float* query, int64_t lq, bool parallel,
                  QueryTables* t) {
  const int64_t dim = codec.dim, n_panels = panel_count(lq);
  t->lq = lq;
  t->lp = n_panels * kPanelCols;
  t->row_bytes = residual_row_bytes(dim, codec.nbits);
  const int64_t lp = t->lp;
  std::vector<float> packed(static_cast<size_t>(n_panels * dim * kPanelCols));
  pack_panels(query, lq, dim, packed.data());
  t->cs.resize(static_cast<size_t>(codec.n_centroids * lp));
  t->lut.resize(static_cast<size_t>(t->row_bytes * 256 * lp));
  const DenseKernels& kernels = gingham::kernels().dense;
  const int64_t n_chunks = (codec.n_centroids + kCentroidChunk - 1) / kCentroidChunk;
  const int nbits = codec.nbits, per_byte = 8 / nbits, n_buckets = 1 << nbits;
  ParallelErrors errors;
#pragma omp parallel num_threads(get_num_threads()) if (parallel)
  {
#pragma omp for schedule(static) nowait
    for (int64_t chunk = 0; chunk < n_chunks; ++chunk) {
      const int64_t r0 = chunk * kCentroidChunk;
      const int64_t rows = std::min(kCentroidChunk, codec.n_centroids - r0);
      kernels.dots(codec.centroids + r0 * dim, rows, dim, packed.data(), 0, n_panels,
                   t->cs.data() + r0 * lp, lp);
    }
    // dim_table[u][b][i] = q_i[d] * weights[d][b] for the per_byte dims d of residual byte j.
    std::vector<float> dim_table;
    errors.run([&] { dim_table.resize(static_cast<size_t>(per_byte * n_buckets * lp)); });
#pragma omp for schedule(static)
    for (int64_t j = 0; j < t->row_bytes; ++j) {
      if (dim_table.empty()) continue;  // its allocation failed: rethrown below
      for (int u = 0; u < per_byte; ++u) {
        const int64_t d = j * per_byte + u;
        for (int b = 0; b < n_buckets; ++b) {
          const float w = codec.weights[d * n_buckets + b];
          float* dst = dim_table.data() + (u * n_buckets + b) * lp;
          for (int64_t i = 0; i < lp; ++i) dst[i] = i < lq ? query[i * dim + d] * w : 0.0f;
        }
      }
      for (int v = 0; v < 256; ++v) {
        float* dst = t->lut.data() + (j * 256 + v) * lp;
        std::fill(dst, dst + lp, 0.0f);
        for (int u = 0; u < per_byte; ++u) {
          const int b = (v >> (8 - nbits * (u + 1))) & (n_buckets - 1);
          const float* src = dim_table.data() + (u * n_buckets + b) * lp;
          for (int64_t i = 0; i < lp; ++i) dst[i] += src[i];
        }
      }
    }
  }
  errors.rethrow();
}

// Per-thread buffers for scoring one document.
struct DocScratch {
  std::vector<float> mx;
  std::vector<int32_t> codes;
  std::vector<float> scales;
};

// The last segment whose doc_base is <= global (an empty segment shares its doc_base with the
// next one, which holds the document).
int64_t segment_of(const SegmentView* segments, int64_t n_segments, int64_t global) {
  int64_t lo = 0, hi = n_segments - 1;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (segments[mid].doc_base <= global) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// The table rows of the n codes of a segment from token `begin` on, into out; returns how
// many. row_of null: every code is its own row. Otherwise row_of[code], leaving out the codes
// mapped to row 0 (pruned_table's -inf row, which cannot raise a maximum), without a branch.
// The code width is resolved once per document, not per token.
template <typename Code>
int64_t rows_of_codes(const Code* codes, int64_t n, const int32_t* row_of, int32_t* out) {
  if (row_of == nullptr) {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(codes[i]);
    return n;
  }
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t row = row_of[codes[i]];
    out[kept] = row;
    kept += row != 0;
  }
  return kept;
}

int64_t rows_of_codes(const SegmentView& seg, int64_t begin, int64_t n, const int32_t* row_of,
                      int32_t* out) {
  if (seg.code_bytes == 2) {
    return rows_of_codes(static_cast<const uint16_t*>(seg.codes) + begin, n, row_of, out);
  }
  return rows_of_codes(static_cast<const uint32_t*>(seg.codes) + begin, n, row_of, out);
}

// Sum of the row maxima; a row that met no token (still -inf) adds empty_row instead.
float sum_rows(const float* mx, int64_t lq, float empty_row) {
  float score = 0.0f;
  for (int64_t i = 0; i < lq; ++i) score += mx[i] > kNegInf ? mx[i] : empty_row;
  return score;
}

// Exact MaxSim of the decoded document (stage 4); -inf for an empty document.
float full_score(const QueryTables& t, const SegmentView& seg, int64_t local, LutMaxFn kernel,
                 DocScratch* s) {
  const int64_t begin = seg.doc_offsets[local], n = seg.doc_offsets[local + 1] - begin;
  if (n <= 0) return kNegInf;
  s->mx.assign(static_cast<size_t>(t.lp), kNegInf);
  s->codes.resize(static_cast<size_t>(n));
  s->scales.resize(static_cast<size_t>(n));
  rows_of_codes(seg, begin, n, nullptr, s->codes.data());
  for (int64_t i = 0; i < n; ++i) {
    s->scales[i] = seg.scales != nullptr ? half_to_float(seg.scales[begin + i]) : 1.0f;
  }
  kernel(t.cs.data(), t.lut.data(), t.lp, t.row_bytes, s->codes.data(),
         seg.residuals + begin * t.row_bytes, s->scales.data(), n, s->mx.data());
  return sum_rows(s->mx.data(), t.lq, kNegInf);
}

// The centroid cosines stage 3 reads: rows of `table` (lp wide), row_of[code] the row of a code
// (null: the code itself).
struct ApproxTable {
  const float* table = nullptr;
  const int32_t* row_of = nullptr;
};

// Stage 3 score from centroid scores only. A query row that none of the document's unpruned
// tokens reaches adds kPrunedRowScore (see plaid.h).
float approx_score(const QueryTables& t, const SegmentView& seg, int64_t local,
                   const ApproxTable& a, CentroidMaxFn kernel, DocScratch* s) {
  const int64_t begin = seg.doc_offsets[local], n = seg.doc_offsets[local + 1] - begin;
  s->mx.assign(static_cast<size_t>(t.lp), kNegInf);
  s->codes.resize(static_cast<size_t>(n));
  const int64_t n_rows = rows_of_codes(seg, begin, n, a.row_of, s->codes.data());
  kernel(a.table, t.lp, s->codes.data(), n_rows, s->mx.data());
  return sum_rows(s->mx.data(), t.lq, kPrunedRowScore);
}

// Candidates are scattered over the index, so the codes of the next ones are requested while
// one is scored: a document's codes (~2 cache lines) are otherwise a wait on memory each.
constexpr int64_t kPrefetchDocs = 8;

inline void prefetch(const char* p) {
#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
  _mm_prefetch(p, _MM_HINT_T0);
#elif defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p);
#else
  (void)p;
#endif
}

void prefetch_codes(const SegmentView* segments, int64_t n_segments, int64_t global) {
  const SegmentView& seg = segments[segment_of(segments, n_segments, global)];
  const int64_t local = global - seg.doc_base;
  const auto* codes = static_cast<const char*>(seg.codes);
  const char* last = codes + seg.doc_offsets[local + 1] * seg.code_bytes;
  for (const char* line = codes + seg.doc_offsets[local] * seg.code_bytes; line < last;
       line += 64) {
    prefetch(line);
  }
}

// scores[i] = fn(ids[i]) over global ids, in parallel when asked.
template <typename Fn>
void score_all(const SegmentView* segments, int64_t n_segments, const std::vector<int64_t>& ids,
               bool parallel, std::vector<float>* scores, Fn fn) {
  const int64_t n = static_cast<int64_t>(ids.size());
  scores->resize(static_cast<size_t>(n));
  ParallelErrors errors;
#pragma omp parallel num_threads(get_num_threads()) if (parallel && n > 16)
  {
    DocScratch scratch;
#pragma omp for schedule(dynamic, 8)
    for (int64_t i = 0; i < n; ++i) {
      if (i + kPrefetchDocs < n) prefetch_codes(segments, n_segments, ids[i + kPrefetchDocs]);
      errors.run([&] {
        const int64_t s = segment_of(segments, n_segments, ids[i]);
        (*scores)[i] = fn(segments[s], ids[i] - segments[s].doc_base, &scratch);
      });
    }
  }
  errors.rethrow();
}

// Query q's listed documents scored from the tables t built for it. known (nullable): documents
// already scored exactly with t, as (global id, score) sorted by id; their scores are copied.
void score_listed(const QueryTables& t, const SegmentView* segments, const ListedDocs& docs,
                  int64_t q, bool parallel,
                  const std::vector<std::pair<int64_t, float>>* known = nullptr) {
  const LutMaxFn kernel = kernels().lut_max;
  const int64_t begin = docs.offsets[q], end = docs.offsets[q + 1];
  ParallelErrors errors;
#pragma omp parallel num_threads(get_num_threads()) if (parallel && end - begin > 16)
  {
    DocScratch scratch;
#pragma omp for schedule(dynamic, 8)
    for (int64_t j = begin; j < end; ++j) {
      errors.run([&] {
        const SegmentView& seg = segments[docs.segments[j]];
        if (known != nullptr) {
          const std::pair<int64_t, float> key{seg.doc_base + docs.rows[j], kNegInf};
          auto it = std::lower_bound(known->begin(), known->end(), key,
                                     [](const auto& a, const auto& b) { return a.first < b.first; });
          if (it != known->end() && it->first == key.first) {
            docs.scores[j] = it->second;
            return;
          }
        }
        docs.scores[j] = full_score(t, seg, docs.rows[j], kernel, &scratch);
      });
    }
  }
  errors.rethrow();
}

// Keeps the best `keep` of (ids, scores), best first.
void keep_best(std::vector<int64_t>* ids, std::vector<float>* scores, int64_t keep) {
  const int64_t n = static_cast<int64_t>(ids->size());
  if (keep >= n) return;
  std::vector<float> top_scores(static_cast<size_t>(keep));
  std::vector<int64_t> top_ids(static_cast<size_t>(keep));
  select_topk(scores->data(), ids->data(), n, keep, top_scores.data(), top_ids.data());
  ids->swap(top_ids);
  scores->swap(top_scores);
}

// One worker's reusable state: tables and the candidate marker (one byte per global document).
struct Worker {
  QueryTables tables;
  std::vector<uint8_t> seen;
  std::vector<int32_t> row_of;  // pruned_table's row of every code
  std::vector<float> pruned_table;
  std::vector<int64_t> ids;
  std::vector<float> scores;
  std::vector<int64_t> top_ids;  // global ids of one query's results
};

void top_cells(const QueryTables& t, int64_t n_centroids, int64_t ncells,
               std::vector<int64_t>* cells) {
  cells->clear();
  if (ncells >= n_centroids) {
    for (int64_t c = 0; c < n_centroids; ++c) cells->push_back(c);
    return;
  }
  // Per query row, a sorted buffer of the best ncells (score desc, id asc); centroids arrive
  // in ascending id order, so only a strictly higher score enters a full buffer.
  const int64_t lq = t.lq, lp = t.lp;
  std::vector<float> best(static_cast<size_t>(lq * ncells), kNegInf);
  std::vector<int64_t> best_id(static_cast<size_t>(lq * ncells), -1);
  std::vector<float> worst(static_cast<size_t>(lq), kNegInf);
  std::vector<int64_t> filled(static_cast<size_t>(lq), 0);
  for (int64_t c = 0; c < n_centroids; ++c) {
    const float* row = t.cos.data() + c * lp;
    for (int64_t i = 0; i < lq; ++i) {
      if (row[i] <= worst[i] && filled[i] == ncells) continue;
      float* b = best.data() + i * ncells;
      int64_t* bi = best_id.data() + i * ncells;
      int64_t pos = std::min(filled[i], ncells - 1);
      while (pos > 0 && b[pos - 1] < row[i]) {
        b[pos] = b[pos - 1];
        bi[pos] = bi[pos - 1];
        --pos;
      }
      b[pos] = row[i];
      bi[pos] = c;
      filled[i] = std::min(filled[i] + 1, ncells);
      if (filled[i] == ncells) worst[i] = b[ncells - 1];
    }
  }
  for (int64_t i = 0; i < lq; ++i) {
    for (int64_t r = 0; r < filled[i]; ++r) cells->push_back(best_id[i * ncells + r]);
  }
  std::sort(cells->begin(), cells->end());
  cells->erase(std::unique(cells->begin(), cells->end()), cells->end());
}

bool searchable(const SegmentView& seg, int64_t local) {
  return seg.doc_offsets[local + 1] > seg.doc_offsets[local] &&
         (seg.mask == nullptr || seg.mask[local] != 0);
}

void all_searchable(const SegmentView* segments, int64_t n_segments, std::vector<int64_t>* ids) {
  ids->clear();
  for (int64_t s = 0; s < n_segments; ++s) {
    for (int64_t d = 0; d < segments[s].n_docs; ++d) {
      if (searchable(segments[s], d)) ids->push_back(segments[s].doc_base + d);
    }
  }
}

// w->ids = the searchable documents (global ids, ascending) of the inverted lists of `cells`.
void collect_candidates(const SegmentView* segments, int64_t n_segments,
                        const std::vector<int64_t>& cells, Worker* w) {
  std::vector<int64_t>& ids = w->ids;
  ids.clear();
  for (int64_t s = 0; s < n_segments; ++s) {
    const SegmentView& seg = segments[s];
    for (int64_t c : cells) {
      for (int64_t e = seg.ivf_offsets[c]; e < seg.ivf_offsets[c + 1]; ++e) {
        const int64_t local = seg.ivf_doc_ids[e], global = seg.doc_base + local;
        if (w->seen[global] || (seg.mask != nullptr && !seg.mask[local])) continue;
        w->seen[global] = 1;
        ids.push_back(global);
      }
    }
  }
  // Sorting n ids costs ~n log2(n) steps, reading the marks back in order one per document: a
  // probe that reaches a large part of the index (most of it at a coarse centroid count) reads
  // the marks.
  const auto n_docs = static_cast<int64_t>(w->seen.size());
  if (static_cast<int64_t>(ids.size()) * 16 < n_docs) {
    std::sort(ids.begin(), ids.end());
    for (int64_t g : ids) w->seen[g] = 0;
    return;
  }
  ids.clear();
  for (int64_t g = 0; g < n_docs; ++g) {
    if (w->seen[g]) ids.push_back(g);
  }
  std::fill(w->seen.begin(), w->seen.end(), uint8_t{0});
}

// Stage 3's table under pruning, in w: row 0 is -inf (every pruned centroid, one whose best
// cosine over the query rows is below threshold, points there), then the cosines of the
// unpruned centroids. Pruned tokens are then dropped without a branch per token
// (rows_of_codes), and the table is the few rows a query keeps rather than all n_centroids (it
// stays in cache). Threshold -inf: all of t.cos.
ApproxTable pruned_table(const CodecView& codec, const QueryTables& t, float threshold,
                         Worker* w) {
  if (!(threshold > kNegInf)) return {t.cos.data(), nullptr};
  const int64_t lp = t.lp;
  w->row_of.resize(static_cast<size_t>(codec.n_centroids));
  w->pruned_table.assign(static_cast<size_t>(lp), kNegInf);
  int32_t n_rows = 1;
  for (int64_t c = 0; c < codec.n_centroids; ++c) {
    const float* row = t.cos.data() + c * lp;
    float m = kNegInf;
    for (int64_t i = 0; i < t.lq; ++i) m = std::max(m, row[i]);
    if (m >= threshold) {
      w->pruned_table.insert(w->pruned_table.end(), row, row + lp);
      w->row_of[c] = n_rows++;
    } else {
      w->row_of[c] = 0;
    }
  }
  return {w->pruned_table.data(), w->row_of.data()};
}

// Stage 3 scores of ids (global) from `table` into *scores; unpruned_table(t) rescores without
// pruning.
void approx_scores(const QueryTables& t, const SegmentView* segments, int64_t n_segments,
                   const std::vector<int64_t>& ids, const ApproxTable& table, bool parallel,
                   std::vector<float>* scores) {
  const CentroidMaxFn kernel = kernels().centroid_max;
  score_all(segments, n_segments, ids, parallel, scores,
            [&](const SegmentView& seg, int64_t local, DocScratch* s) {
              return approx_score(t, seg, local, table, kernel, s);
            });
}

ApproxTable unpruned_table(const QueryTables& t) { return {t.cos.data(), nullptr}; }

// codec with its centroids' inverse norms (computed into *storage when the view has none).
CodecView with_inv_norms(const CodecView& view, std::vector<float>* storage) {
  CodecView codec = view;
  if (codec.inv_norms == nullptr) {
    storage->resize(static_cast<size_t>(codec.n_centroids));
    centroid_inv_norms(codec, storage->data());
    codec.inv_norms = storage->data();
  }
  return codec;
}

void search_one(const CodecView& codec, const SegmentView* segments, int64_t n_segments,
                const float* query, int64_t lq, const PlaidParams& p, int64_t k_out,
                bool parallel, Worker* w, float* out_scores, int64_t* out_ids,
                PlaidStats* stats) {
  PlaidStats st;
  const LutMaxFn kernel = kernels().lut_max;
  auto clock = std::chrono::steady_clock::now();
  build_tables(codec, query, lq, parallel, &w->tables);
  if (!p.exact) build_cosines(codec, parallel, &w->tables);
  st.centroid_ms = ms_since(clock);
  const QueryTables& t = w->tables;
  auto full = [&](const SegmentView& seg, int64_t local, DocScratch* s) {
    return full_score(t, seg, local, kernel, s);
  };

  clock = std::chrono::steady_clock::now();
  std::vector<int64_t>& ids = w->ids;
  const bool exhaustive = p.exact;
  if (!exhaustive) {
    // Too few candidates for k: widen the probe (doubling ncells) until there are k or every
    // cell is probed, at which point every searchable non-empty document is a candidate.
    std::vector<int64_t> cells;
    for (int64_t ncells = p.ncells;; ncells = std::min(codec.n_centroids, 2 * ncells)) {
      top_cells(t, codec.n_centroids, ncells, &cells);
      st.n_cells = static_cast<int64_t>(cells.size());
      collect_candidates(segments, n_segments, cells, w);
      if (static_cast<int64_t>(ids.size()) >= p.k || ncells >= codec.n_centroids) break;
    }
    st.n_candidates = static_cast<int64_t>(ids.size());
  }
  st.candidate_ms = ms_since(clock);

  clock = std::chrono::steady_clock::now();
  if (!exhaustive) {
    const bool prune = p.centroid_score_threshold > kNegInf;
    const ApproxTable pruned = pruned_table(codec, t, p.centroid_score_threshold, w);
    approx_scores(t, segments, n_segments, ids, pruned, parallel, &w->scores);
    keep_best(&ids, &w->scores, std::max(p.ndocs, p.k));
    st.n_after_pruning = static_cast<int64_t>(ids.size());
    const int64_t n_full = std::max(p.ndocs / 4, p.k);
    if (static_cast<int64_t>(ids.size()) > n_full) {
      if (prune) approx_scores(t, segments, n_segments, ids, unpruned_table(t), parallel,
                               &w->scores);
      keep_best(&ids, &w->scores, n_full);
    }
  } else {
    all_searchable(segments, n_segments, &ids);
  }
  st.approx_ms = ms_since(clock);

  clock = std::chrono::steady_clock::now();
  score_all(segments, n_segments, ids, parallel, &w->scores, full);
  st.n_full = static_cast<int64_t>(ids.size());
  st.full_ms = ms_since(clock);

  clock = std::chrono::steady_clock::now();
  select_topk(w->scores.data(), ids.data(), static_cast<int64_t>(ids.size()), k_out, out_scores,
              out_ids);
  st.topk_ms = ms_since(clock);
  if (stats != nullptr) *stats = st;
}

}  // namespace

PlaidParams default_plaid_params(int64_t k) {
  PlaidParams p;
  p.k = k;
  if (k <= 10) {
    p.ncells = 1, p.centroid_score_threshold = 0.5f, p.ndocs = 256;
  } else if (k <= 100) {
    p.ncells = 2, p.centroid_score_threshold = 0.45f, p.ndocs = 1024;
  } else {
    p.ncells = 4, p.centroid_score_threshold = 0.4f, p.ndocs = 4096;
  }
  return p;
}

int64_t count_searchable_docs(const SegmentView* segments, int64_t n_segments) {
  int64_t count = 0;
  for (int64_t s = 0; s < n_segments; ++s) {
    for (int64_t d = 0; d < segments[s].n_docs; ++d) count += searchable(segments[s], d);
  }
  return count;
}

namespace {

// The segments with doc_base set: global ids number the documents of every segment in order.
std::vector<SegmentView> numbered(const SegmentView* views, int64_t n_segments,
                                  int64_t* total_docs) {
  std::vector<SegmentView> segments(views, views + n_segments);
  *total_docs = 0;
  for (SegmentView& s : segments) {
    s.doc_base = *total_docs;
    *total_docs += s.n_docs;
  }
  return segments;
}

// run(qi, parallel, worker) for every query: one query per thread when there are enough
// queries, else one after another with parallel stages (plaid_search's rule).
template <typename Fn>
void for_each_query(int64_t n_queries, int64_t total_docs, Fn run) {
  const int n_threads = get_num_threads();
  if (n_queries >= n_threads && n_threads > 1) {
    std::vector<Worker> workers(static_cast<size_t>(n_threads));
    for (Worker& w : workers) w.seen.assign(static_cast<size_t>(total_docs), 0);
    ParallelErrors errors;
#pragma omp parallel num_threads(n_threads)
    {
      Worker& w = workers[static_cast<size_t>(omp_get_thread_num())];
#pragma omp for schedule(dynamic, 1)
      for (int64_t qi = 0; qi < n_queries; ++qi) errors.run([&] { run(qi, false, &w); });
    }
    errors.rethrow();
  } else {
    Worker w;
    w.seen.assign(static_cast<size_t>(total_docs), 0);
    for (int64_t qi = 0; qi < n_queries; ++qi) run(qi, true, &w);
  }
}

}  // namespace

void plaid_search(const CodecView& codec_view, const SegmentView* segment_views,
                  int64_t n_segments, const float* queries, const int64_t* query_offsets,
                  int64_t n_queries,
                  const PlaidParams& params, int64_t k_out, float* out_scores,
                  int64_t* out_segments, int64_t* out_rows, PlaidStats* stats,
                  const ListedDocs* also) {
  std::vector<float> inv_norms;
  const CodecView codec = with_inv_norms(codec_view, &inv_norms);
  int64_t total_docs = 0;
  const std::vector<SegmentView> segments = numbered(segment_views, n_segments, &total_docs);
  auto run = [&](int64_t qi, bool parallel, Worker* w) {
    w->top_ids.resize(static_cast<size_t>(k_out));
    search_one(codec, segments.data(), n_segments, queries + query_offsets[qi] * codec.dim,
               query_offsets[qi + 1] - query_offsets[qi], params, k_out, parallel, w,
               out_scores + qi * k_out, w->top_ids.data(), stats ? stats + qi : nullptr);
    for (int64_t r = 0; r < k_out; ++r) {
      const int64_t global = w->top_ids[r];
      const int64_t s = segment_of(segments.data(), n_segments, global);
      out_segments[qi * k_out + r] = s;
      out_rows[qi * k_out + r] = global - segments[s].doc_base;
    }
    if (also != nullptr) {
      // the documents of stage 4 already have their exact scores (w->ids, w->scores)
      std::vector<std::pair<int64_t, float>> known(w->ids.size());
      for (size_t i = 0; i < known.size(); ++i) known[i] = {w->ids[i], w->scores[i]};
      std::sort(known.begin(), known.end());
      score_listed(w->tables, segments.data(), *also, qi, parallel, &known);
    }
  };
  for_each_query(n_queries, total_docs, run);
}

void score_docs_from_codes(const CodecView& codec, const SegmentView& segment, const float* query,
                           int64_t n_rows, const int64_t* doc_ids, int64_t n_ids, float* scores) {
  QueryTables t;
  build_tables(codec, query, n_rows, true, &t);
  const LutMaxFn kernel = kernels().lut_max;
  ParallelErrors errors;
#pragma omp parallel num_threads(get_num_threads()) if (n_ids > 16)
  {
    DocScratch scratch;
#pragma omp for schedule(dynamic, 8)
    for (int64_t i = 0; i < n_ids; ++i) {
      errors.run([&] { scores[i] = full_score(t, segment, doc_ids[i], kernel, &scratch); });
    }
  }
  errors.rethrow();
}

namespace {

// Stages 1-3a of search_one for one query at exactly p.ncells cells; out_* hold `keep` slots.
void candidates_one(const CodecView& codec, const SegmentView* segments, int64_t n_segments,
                    const float* query, int64_t lq, const PlaidParams& p, int64_t keep,
                    bool parallel, Worker* w, int64_t* n_candidates, int64_t* n_kept,
                    float* approx, float* rescored, int64_t* out_ids) {
  build_tables(codec, query, lq, parallel, &w->tables);
  build_cosines(codec, parallel, &w->tables);
  const QueryTables& t = w->tables;
  std::vector<int64_t> cells;
  top_cells(t, codec.n_centroids, p.ncells, &cells);
  collect_candidates(segments, n_segments, cells, w);
  std::vector<int64_t>& ids = w->ids;
  *n_candidates = static_cast<int64_t>(ids.size());

  const bool prune = p.centroid_score_threshold > kNegInf;
  const ApproxTable pruned = pruned_table(codec, t, p.centroid_score_threshold, w);
  approx_scores(t, segments, n_segments, ids, pruned, parallel, &w->scores);
  *n_kept = select_topk(w->scores.data(), ids.data(), static_cast<int64_t>(ids.size()), keep,
                        approx, out_ids);
  if (!prune) {
    std::copy(approx, approx + *n_kept, rescored);
    return;
  }
  std::vector<int64_t> kept(out_ids, out_ids + *n_kept);
  approx_scores(t, segments, n_segments, kept, unpruned_table(t), parallel, &w->scores);
  std::copy(w->scores.begin(), w->scores.end(), rescored);
}

}  // namespace

void plaid_candidates(const CodecView& codec_view, const SegmentView* segment_views,
                      int64_t n_segments, const float* queries, const int64_t* query_offsets,
                      int64_t n_queries, const PlaidParams& params, int64_t keep,
                      int64_t* n_candidates, int64_t* n_kept, float* approx, float* rescored,
                      int64_t* out_segments, int64_t* out_rows) {
  std::vector<float> inv_norms;
  const CodecView codec = with_inv_norms(codec_view, &inv_norms);
  int64_t total_docs = 0;
  const std::vector<SegmentView> segments = numbered(segment_views, n_segments, &total_docs);
  for_each_query(n_queries, total_docs, [&](int64_t qi, bool parallel, Worker* w) {
    w->top_ids.resize(static_cast<size_t>(keep));
    const int64_t base = qi * keep;
    candidates_one(codec, segments.data(), n_segments, queries + query_offsets[qi] * codec.dim,
                   query_offsets[qi + 1] - query_offsets[qi], params, keep, parallel, w,
                   n_candidates + qi, n_kept + qi, approx + base, rescored + base,
                   w->top_ids.data());
    for (int64_t r = 0; r < n_kept[qi]; ++r) {
      const int64_t global = w->top_ids[r];
      const int64_t s = segment_of(segments.data(), n_segments, global);
      out_segments[base + r] = s;
      out_rows[base + r] = global - segments[s].doc_base;
    }
  });
}

void plaid_score_candidates(const CodecView& codec, const SegmentView* segments,
                            int64_t n_segments, const float* queries,
                            const int64_t* query_offsets, int64_t n_queries,
                            const ListedDocs& candidates) {
  (void)n_segments;  // every candidates.segments entry was checked against it by the caller
  for_each_query(n_queries, 0, [&](int64_t qi, bool parallel, Worker* w) {
    build_tables(codec, queries + query_offsets[qi] * codec.dim,
                 query_offsets[qi + 1] - query_offsets[qi], parallel, &w->tables);
    score_listed(w->tables, segments, candidates, qi, parallel);
  });
}

}  // namespace gingham
