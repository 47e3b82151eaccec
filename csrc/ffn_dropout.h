// Dropout of the FFN output, out = in * keep * scale on a [rows, n_cols] matrix, behind a
// raw-pointer launcher so that only bindings.cpp sees torch. The forward (on the down projection's
// result) and the backward (on its gradient) are the same operation with the same mask: element
// (row, col) is kept iff philox_uniform(seed, row * n_cols + col) >= dropout_p, the stream of
// kernels/ffn_matmul.py and fastattn.reference.dropout_keep_mask.
//
// in and out have unit column stride and their own row strides (elements); out may be in.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include "element_type.h"

namespace fastattn {

struct FfnDropoutParams {
  const void* in;
  void* out;
  int64_t rows;
  int64_t n_cols;
  int64_t stride_in, stride_out;
  float dropout_p;
  float dropout_scale;
  uint64_t seed;
};

// rows == 0 or n_cols == 0 launches nothing.
cudaError_t launch_ffn_dropout(const FfnDropoutParams& params, ElementType dtype, cudaStream_t stream);

}  // namespace fastattn
