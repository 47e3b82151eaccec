// LayerNorm fused with dropout and the residual add, y = LN(dropout(x) + residual): CUDA kernels
// behind raw-pointer launchers, so that only bindings.cpp sees torch.
//
// All row-major matrices are [rows, n_cols] with unit column stride and their own row stride (in
// elements). Elements are float32, float16 or bfloat16 (one type for every matrix and for weight and
// bias); mean, rstd and the partial sums are float32.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include "element_type.h"

namespace fastattn {

// Widest row the kernels take (the front's MAX_HIDDEN["cuda"]).
constexpr int kLayerNormMaxCols = 32768;

struct LayerNormResidualFwdParams {
  const void* x;
  const void* residual;  // nullptr: no residual
  const void* weight;    // [n_cols], contiguous
  const void* bias;      // [n_cols], contiguous
  void* y;
  void* h;               // nullptr: h = dropout(x) + residual is not written
  float* mean;           // [rows]
  float* rstd;           // [rows]
  int64_t rows;
  int n_cols;
  int64_t stride_x, stride_residual, stride_y, stride_h;
  float eps;
  bool has_dropout;
  float dropout_p;       // keep element iff philox_uniform(seed, row * n_cols + col) >= dropout_p
  float dropout_scale;   // multiplier of kept elements
  uint64_t seed;
};

struct LayerNormResidualBwdParams {
  const void* dy;
  const void* dh_out;    // nullptr: no gradient flows into h from outside the LayerNorm
  const void* h;
  const void* weight;
  const float* mean;
  const float* rstd;
  void* dh;
  void* dx;              // written only when has_dropout
  float* dweight_partial;  // [chunks, n_cols]
  float* dbias_partial;    // [chunks, n_cols]
  int chunks;              // from layer_norm_residual_bwd_chunks(rows, n_cols)
  int64_t rows;
  int n_cols;
  int64_t stride_dy, stride_dh_out, stride_h, stride_dh, stride_dx;
  bool has_dropout;
  float dropout_p;
  float dropout_scale;
  uint64_t seed;
};

// Writes y, h (if asked), mean and rstd. rows == 0 launches nothing.
cudaError_t launch_layer_norm_residual_fwd(const LayerNormResidualFwdParams& params,
                                           ElementType dtype, cudaStream_t stream);

// Row chunks the weight-gradient reduction splits `rows` into on the current device: the partial
// buffers hold one float32 row per chunk, which the caller sums over.
int layer_norm_residual_bwd_chunks(int64_t rows, int n_cols);

// Writes dh, dx (under dropout) and the dweight/dbias partial sums. rows == 0 launches nothing.
// On failure *failed_kernel names the kernel whose launch failed.
cudaError_t launch_layer_norm_residual_bwd(const LayerNormResidualBwdParams& params,
                                           ElementType dtype, cudaStream_t stream,
                                           const char** failed_kernel);

}  // namespace fastattn
