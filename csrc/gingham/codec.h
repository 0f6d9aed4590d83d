// ColBERTv2-style residual codec: token = centroid + per-dimension quantized residual, rescaled
// to the token's own norm.
//
//   code(x)        = nearest centroid (kmeans.h, L2)
//   r = x - centroids[code]
//   bucket(r_d)    = number of cutoffs[d][j] strictly below r_d         in [0, 2^nbits)
//   y[d]           = centroids[code][d] + weights[d][bucket(r_d)]
//   scale(x)       = |x| / |y|  (1 when y = 0, at most 65504), stored as IEEE float16
//   decode(x)      = scale(x) * y
//
// Cutoffs and weights are per dimension, learned from the residuals of a training sample: a
// Lloyd-Max scalar quantizer (least squared error on the sample) started at the quantiles
// cutoffs[d][j] = quantile_d((j + 1) / B), weights[d][b] = quantile_d((b + 0.5) / B), B = 2^nbits,
// then alternating weights = mean of the sample values in each bucket and cutoffs = midpoints of
// adjacent weights, until no cutoff moves (at most kLloydIters rounds). The scale restores the
// norm the quantization loses (ColBERT tokens are unit vectors, so this is ColBERTv2's
// re-normalization, for any norm); it costs 2 bytes per token and keeps scoring linear per token:
// <q, decode(x)> = scale * (<q, centroid> + sum_d q_d * weights[d][bucket_d]), so the search
// scores codes from per-query look-up tables without building float tokens (plaid.h).
//
// Buffers:
//   centroids  n_centroids x dim float32      cutoffs  dim x (B - 1) float32
//   weights    dim x B float32                codes    n uint16 (n_centroids <= 65536) or uint32
//   scales     n float16 bit patterns (uint16)
//   residuals  n x (dim * nbits / 8) uint8, each row bit-packed MSB first:
//
//   dimension d's bucket occupies bits [d*nbits, (d+1)*nbits) of the row, bit 0 being the most
//   significant bit of byte 0, and the bucket's own bits are written most significant first
//   (= numpy.packbits over the bucket bits in order). nbits = 2, one byte:
//
//        bit  7   6 | 5   4 | 3   2 | 1   0
//            [ d0   | d1    | d2    | d3    ]     d0 = (byte >> 6) & 3, d3 = byte & 3
//
//   nbits = 1: byte k holds dims 8k..8k+7 (d 8k at bit 7); nbits = 4: dims 2k (high nibble), 2k+1.
// dim * nbits must be a multiple of 8 so that rows are whole bytes.
#pragma once

#include <cstdint>

namespace gingham {

struct CodecView {
  const float* centroids = nullptr;
  int64_t n_centroids = 0;
  int64_t dim = 0;
  int nbits = 2;
  const float* cutoffs = nullptr;  // dim x (2^nbits - 1), needed to encode
  const float* weights = nullptr;  // dim x 2^nbits, needed to decode and to search
  // n_centroids: 1 / |centroid| (0 for a zero centroid), for the centroid cosines of the staged
  // search (plaid.h); null: plaid_search computes them.
  const float* inv_norms = nullptr;
};

// out[c] = 1 / |centroids[c]| (0 for a zero centroid), c < n_centroids.
void centroid_inv_norms(const CodecView& codec, float* out);

inline int64_t residual_row_bytes(int64_t dim, int nbits) { return dim * nbits / 8; }
inline int code_bytes_for(int64_t n_centroids) { return n_centroids <= 65536 ? 2 : 4; }
inline bool valid_nbits(int nbits) { return nbits == 1 || nbits == 2 || nbits == 4; }

constexpr int kLloydIters = 50;

// Learns cutoffs (dim x (B-1)) and weights (dim x B) from the residuals of x (n x dim) against
// their centroids codes (n int32). Parallel over dimensions; deterministic.
void fit_buckets(const float* x, int64_t n, const int32_t* codes, const CodecView& codec,
                 float* cutoffs, float* weights);

// Encodes x (n x dim): codes (n values of code_bytes_for(n_centroids) bytes each), packed
// residual rows and float16 scales. Needs centroids, cutoffs and weights. Parallel over tokens.
void encode(const CodecView& codec, const float* x, int64_t n, void* codes, uint8_t* residuals,
            uint16_t* scales);

// Decodes n tokens into out (n x dim). Needs centroids and weights. code_bytes is 2 or 4;
// scales may be null (every scale 1: segments written before scales existed).
void decode(const CodecView& codec, const void* codes, int code_bytes, const uint8_t* residuals,
            const uint16_t* scales, int64_t n, float* out);

// Bucket of dimension d in a packed row (see the layout above).
inline int bucket_at(const uint8_t* row, int64_t d, int nbits) {
  const int64_t bit = d * nbits;
  const int shift = 8 - nbits - static_cast<int>(bit & 7);
  return (row[bit >> 3] >> shift) & ((1 << nbits) - 1);
}

inline int64_t code_at(const void* codes, int code_bytes, int64_t i) {
  return code_bytes == 2 ? static_cast<const uint16_t*>(codes)[i]
                         : static_cast<int64_t>(static_cast<const uint32_t*>(codes)[i]);
}

}  // namespace gingham
