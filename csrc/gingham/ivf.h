// Inverted file: centroid -> the documents having at least one token with that code.
//
//   codes:       T values (uint16 or uint32), token-major like the residuals
//   doc_offsets: n_docs + 1 int64 (CSR over tokens, as in maxsim.h)
//   ivf_offsets: n_centroids + 1 int64; ivf_doc_ids[ivf_offsets[c] : ivf_offsets[c+1]] are the
//                document indices (int32, segment-local) of centroid c, sorted ascending, unique
#pragma once

#include <cstdint>
#include <vector>

namespace gingham {

// Builds the lists; ivf_offsets must hold n_centroids + 1 values. Every code must be
// < n_centroids (checked by the caller).
void build_ivf(const void* codes, int code_bytes, const int64_t* doc_offsets, int64_t n_docs,
               int64_t n_centroids, int64_t* ivf_offsets, std::vector<int32_t>* ivf_doc_ids);

}  // namespace gingham
