// The FFN output dropout (see ffn_dropout.h): one thread per element of a 2D grid of 32 x 8 tiles,
// so a warp reads 32 adjacent elements of a row. The Philox draw dominates (10 rounds per element),
// not the memory traffic, hence no vector packing.

#include "ffn_dropout.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "common.cuh"
#include "philox.cuh"

namespace fastattn {
namespace {

constexpr int kTileCols = kWarpSize;
constexpr int kTileRows = 8;
constexpr int64_t kMaxGridY = 65535;

template <typename T>
__global__ void __launch_bounds__(kTileCols * kTileRows)
ffn_dropout_kernel(FfnDropoutParams p) {
  const int64_t col = static_cast<int64_t>(blockIdx.x) * kTileCols + threadIdx.x;
  if (col >= p.n_cols) return;
  // gridDim.y is capped: each thread strides over the rows of several row tiles.
  for (int64_t row = static_cast<int64_t>(blockIdx.y) * kTileRows + threadIdx.y; row < p.rows;
       row += static_cast<int64_t>(gridDim.y) * kTileRows) {
    const float value = to_float(static_cast<const T*>(p.in)[row * p.stride_in + col]);
    const bool keep = philox_uniform(p.seed, static_cast<uint64_t>(row * p.n_cols + col)) >= p.dropout_p;
    static_cast<T*>(p.out)[row * p.stride_out + col] =
        from_float<T>(keep ? __fmul_rn(value, p.dropout_scale) : 0.0f);
  }
}

template <typename T>
cudaError_t launch(const FfnDropoutParams& p, cudaStream_t stream) {
  const int64_t col_tiles = (p.n_cols + kTileCols - 1) / kTileCols;
  const int64_t row_tiles = std::min<int64_t>((p.rows + kTileRows - 1) / kTileRows, kMaxGridY);
  if (col_tiles > 2147483647) return cudaErrorInvalidValue;
  ffn_dropout_kernel<T><<<dim3(static_cast<unsigned int>(col_tiles), static_cast<unsigned int>(row_tiles)),
                          dim3(kTileCols, kTileRows), 0, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_ffn_dropout(const FfnDropoutParams& params, ElementType dtype, cudaStream_t stream) {
  if (params.rows == 0 || params.n_cols == 0) return cudaSuccess;
  switch (dtype) {
    case ElementType::kFloat32: return launch<float>(params, stream);
    case ElementType::kFloat16: return launch<__half>(params, stream);
    case ElementType::kBFloat16: return launch<__nv_bfloat16>(params, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace fastattn
