// Launcher of the decode attention kernels (decode_attention_kernels.cuh, which also picks the
// instantiation for the element type, lanes per key and query rows per block).

#include "decode_attention.h"

#include <cuda_runtime.h>

#include "decode_attention_kernels.cuh"

namespace fastattn {

cudaError_t launch_decode_attention(const DecodeAttentionParams& params, ElementType dtype,
                                    cudaStream_t stream) {
  if (params.batch * params.heads * params.queries == 0 || params.keys == 0) return cudaSuccess;
  const bool supported = decode_kernels::run(
      params, dtype, [&](decode_kernels::DecodeKernel kernel, dim3 grid) {
        kernel<<<grid, kDecodeThreads, 0, stream>>>(params);
      });
  return supported ? cudaGetLastError() : cudaErrorInvalidValue;
}

}  // namespace fastattn
