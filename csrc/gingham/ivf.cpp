#include "gingham/ivf.h"

#include <algorithm>

#include "gingham/codec.h"

namespace gingham {
namespace {

// Calls visit(code) once per distinct code of document doc.
template <typename Visit>
void for_each_unique_code(const void* codes, int code_bytes, const int64_t* doc_offsets,
                          int64_t doc, std::vector<int64_t>* scratch, Visit visit) {
  scratch->clear();
  for (int64_t t = doc_offsets[doc]; t < doc_offsets[doc + 1]; ++t) {
    scratch->push_back(code_at(codes, code_bytes, t));
  }
  std::sort(scratch->begin(), scratch->end());
  for (size_t i = 0; i < scratch->size(); ++i) {
    if (i == 0 || (*scratch)[i] != (*scratch)[i - 1]) visit((*scratch)[i]);
  }
}

}  // namespace

void build_ivf(const void* codes, int code_bytes, const int64_t* doc_offsets, int64_t n_docs,
               int64_t n_centroids, int64_t* ivf_offsets, std::vector<int32_t>* ivf_doc_ids) {
  std::vector<int64_t> scratch;
  std::fill(ivf_offsets, ivf_offsets + n_centroids + 1, int64_t{0});
  for (int64_t doc = 0; doc < n_docs; ++doc) {
    for_each_unique_code(codes, code_bytes, doc_offsets, doc, &scratch,
                         [&](int64_t c) { ++ivf_offsets[c + 1]; });
  }
  for (int64_t c = 0; c < n_centroids; ++c) ivf_offsets[c + 1] += ivf_offsets[c];
  ivf_doc_ids->assign(static_cast<size_t>(ivf_offsets[n_centroids]), 0);
  std::vector<int64_t> fill(ivf_offsets, ivf_offsets + n_centroids);
  // Documents are visited in ascending order, so every list comes out sorted.
  for (int64_t doc = 0; doc < n_docs; ++doc) {
    for_each_unique_code(codes, code_bytes, doc_offsets, doc, &scratch, [&](int64_t c) {
      (*ivf_doc_ids)[fill[c]++] = static_cast<int32_t>(doc);
    });
  }
}

}  // namespace gingham
