// Scaled masked softmax over the last dimension of attention scores [B, H, Sq, Sk], seen as
// rows = B * H * Sq rows of Sk elements: CUDA kernels behind raw-pointer launchers, so that only
// bindings.cpp sees torch.
//
// Row r is query r % Sq of batch r / (H * Sq) (softmax_rows.cuh). Key j is visible to it when
// key_padding_mask[b, j] is non-zero (no mask: all keys) and j < softmax_row_visible_end: under
// causal j <= query + Sk - Sq (bottom-right aligned), for varlen also inside the sequence. A row
// with no visible key is all zeros. Statistics are float32; elements are float32, float16 or
// bfloat16 (one type for scores and outputs).
//
// Attention dropout (the cuda attention backend's Megatron-style path) is fused in: the forward
// also writes dropped = out * keep / (1 - p), the backward takes the gradient of `dropped` and
// regenerates keep from (seed, row, col) instead of reading a stored mask.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include "element_type.h"
#include "softmax_rows.cuh"

namespace fastattn {

// Score (row, col) is kept iff attention_dropout_uniform(seed, row, n_cols, col) >= p
// (softmax_rows.cuh). A zero probability (a hidden key) is dropped without a draw: its output and
// gradient are 0 either way, which spares the Philox rounds on the masked part of causal and padded
// rows.
struct SoftmaxDropout {
  void* dropped;                   // [rows, n_cols], unit column stride; nullptr: no dropout
  int64_t stride_dropped;
  uint64_t seed;
  float p;
  float scale;                     // 1 / (1 - p), 0 for p == 1
};

struct MaskedSoftmaxFwdParams {
  const void* scores;              // [rows, n_cols], unit column stride
  const uint8_t* key_padding_mask; // [batch, n_cols] of 0/1 bytes (torch.bool); nullptr: none
  void* out;                       // [rows, n_cols], unit column stride
  int64_t rows;
  SoftmaxRowShape shape;           // n_cols, causality, varlen lengths
  int64_t stride_scores, stride_mask, stride_out;  // row strides, in elements
  float scale;                     // softmax(scale * scores)
  SoftmaxDropout dropout;          // also writes dropout.dropped = out * keep * dropout.scale
};

struct MaskedSoftmaxBwdParams {
  const void* grad_out;            // dy (of `dropped` under dropout)
  const void* out;                 // y, the forward's (undropped) output
  // dx = scale * y * (g - sum(g * y)), g = dy (under dropout: dy * keep * dropout.scale). May
  // alias grad_out: each element is read before it is overwritten, by the same thread.
  void* grad_in;
  int64_t rows;
  int64_t n_cols;
  int64_t stride_grad_out, stride_out, stride_grad_in;
  float scale;
  SoftmaxDropout dropout;          // also writes dropout.dropped = y * keep * dropout.scale again,
                                   // for the dV GEMM, so the forward need not keep it
};

// rows == 0 or n_cols == 0 launches nothing.
cudaError_t launch_masked_softmax_fwd(const MaskedSoftmaxFwdParams& params, ElementType dtype,
                                      cudaStream_t stream);
cudaError_t launch_masked_softmax_bwd(const MaskedSoftmaxBwdParams& params, ElementType dtype,
                                      cudaStream_t stream);

}  // namespace fastattn
