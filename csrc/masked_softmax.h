// Scaled masked softmax over the last dimension of attention scores [B, H, Sq, Sk], seen as
// rows = B * H * Sq rows of Sk elements: CUDA kernels behind raw-pointer launchers, so that only
// bindings.cpp sees torch.
//
// Row r is query r % Sq of batch r / (H * Sq). Key j is visible to it when key_padding_mask[b, j]
// is non-zero (no mask: all keys) and, under causal, j <= query + Sk - Sq (bottom-right aligned).
// A row with no visible key is all zeros. Statistics are float32; elements are float32, float16
// or bfloat16 (one type for scores and output).
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include "element_type.h"

namespace fastattn {

struct MaskedSoftmaxFwdParams {
  const void* scores;              // [rows, n_cols], unit column stride
  const uint8_t* key_padding_mask; // [batch, n_cols] of 0/1 bytes (torch.bool); nullptr: none
  void* out;                       // [rows, n_cols], unit column stride
  int64_t rows;
  int64_t n_cols;                  // Sk
  int64_t stride_scores, stride_mask, stride_out;  // row strides, in elements
  int64_t rows_per_batch;          // H * Sq
  int64_t queries;                 // Sq
  bool causal;
  float scale;                     // softmax(scale * scores)
};

struct MaskedSoftmaxBwdParams {
  const void* grad_out;            // dy
  const void* out;                 // y, the forward's output
  void* grad_in;                   // dx = scale * y * (dy - sum(dy * y))
  int64_t rows;
  int64_t n_cols;
  int64_t stride_grad_out, stride_out, stride_grad_in;
  float scale;
};

// rows == 0 or n_cols == 0 launches nothing.
cudaError_t launch_masked_softmax_fwd(const MaskedSoftmaxFwdParams& params, ElementType dtype,
                                      cudaStream_t stream);
cudaError_t launch_masked_softmax_bwd(const MaskedSoftmaxBwdParams& params, ElementType dtype,
                                      cudaStream_t stream);

}  // namespace fastattn
