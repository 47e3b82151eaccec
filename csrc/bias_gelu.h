// out = gelu(x + bias) over the last dimension, and its backward: CUDA kernels behind raw-pointer
// launchers, so that only bindings.cpp sees torch.
//
// x, out, grad_out and grad_in are [rows, n_cols] with unit column stride and their own row stride
// (in elements); bias is a contiguous [n_cols] vector of the same element type (float32, float16 or
// bfloat16). Math is float32; x + bias is not rounded before the activation.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include "element_type.h"

namespace fastattn {

struct BiasGeluFwdParams {
  const void* x;
  const void* bias;
  void* out;
  int64_t rows;
  int64_t n_cols;
  int64_t stride_x, stride_out;
  bool tanh_approximation;  // false: exact erf GELU
};

// The backward recomputes x + bias (inputs are saved, not the activation). The bias gradient is
// reduced deterministically: chunk c sums its rows [c * ceil(rows / chunks), ...) of grad_in in
// float32 into bias_grad_partial[c, :], and the caller sums the chunks.
struct BiasGeluBwdParams {
  const void* grad_out;
  const void* x;
  const void* bias;
  void* grad_in;
  float* bias_grad_partial;  // [chunks, n_cols], contiguous
  int chunks;                // 1 .. kBiasGeluMaxChunks
  int64_t rows;
  int64_t n_cols;
  int64_t stride_grad_out, stride_x, stride_grad_in;
  bool tanh_approximation;
};

// The chunk count is a grid dimension (gridDim.y).
constexpr int kBiasGeluMaxChunks = 65535;

// rows == 0 or n_cols == 0 launches nothing (the backward then writes no partials).
cudaError_t launch_bias_gelu_fwd(const BiasGeluFwdParams& params, ElementType dtype,
                                 cudaStream_t stream);
cudaError_t launch_bias_gelu_bwd(const BiasGeluBwdParams& params, ElementType dtype,
                                 cudaStream_t stream);

}  // namespace fastattn
