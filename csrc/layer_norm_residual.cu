// LayerNorm fused with dropout and the residual add; semantics match kernels/layer_norm_residual.py.
//
// Forward: one block per row. h = dropout(x) + residual is formed in float32, rounded to the element
// type (as eager `x + r` is) and staged in shared memory, or in the y row itself when the row does
// not fit; two passes over the stage give mean and the centred variance, a third writes y.
//
// Backward: one block per row writes dh (and dx under dropout) from two row sums; a second kernel
// sums dy * xhat and dy down column tiles over chunks of rows into float32 partials that the caller
// adds up, so no atomics and a deterministic result.
//
// Each thread handles the same columns in every pass and every row, so a thread re-reads only what
// it wrote itself and the stage needs no barriers. 16-byte vectors are used only when n_cols, every
// row stride and every pointer allow it; a scalar path takes the rest.

#include "layer_norm_residual.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "common.cuh"
#include "philox.cuh"

namespace fastattn {
namespace {

constexpr int kMaxThreads = 1024;
// The column-sum kernel: a warp spans kColTile adjacent columns, kRowLanes warps walk the rows.
constexpr int kColTile = 32;
constexpr int kRowLanes = 16;
constexpr int64_t kMaxGridX = 2147483647;
constexpr int kMaxGridY = 65535;

// Kept elements are scaled, dropped ones zeroed. __fmul_rn keeps the product from being fused into
// a following add, so h rounds exactly as in the Triton kernel.
__device__ __forceinline__ float apply_dropout(float value, uint64_t seed, uint64_t offset,
                                               float dropout_p, float dropout_scale) {
  return philox_uniform(seed, offset) >= dropout_p ? __fmul_rn(value, dropout_scale) : 0.0f;
}

template <typename T, int VEC>
__global__ void __launch_bounds__(kMaxThreads)
layer_norm_residual_fwd_kernel(LayerNormResidualFwdParams p, bool stage_in_shared) {
  using P = Pack<T, VEC>;
  extern __shared__ __align__(16) unsigned char shared_stage[];
  __shared__ float scratch[kWarpSize];
  const int n_packs = p.n_cols / VEC;
  const float n = static_cast<float>(p.n_cols);
  const P* weight = static_cast<const P*>(p.weight);
  const P* bias = static_cast<const P*>(p.bias);

  for (int64_t row = blockIdx.x; row < p.rows; row += gridDim.x) {
    const P* x = reinterpret_cast<const P*>(static_cast<const T*>(p.x) + row * p.stride_x);
    const P* residual = p.residual == nullptr ? nullptr
        : reinterpret_cast<const P*>(static_cast<const T*>(p.residual) + row * p.stride_residual);
    P* y = reinterpret_cast<P*>(static_cast<T*>(p.y) + row * p.stride_y);
    P* h_out = p.h == nullptr ? nullptr
        : reinterpret_cast<P*>(static_cast<T*>(p.h) + row * p.stride_h);
    P* stage = stage_in_shared ? reinterpret_cast<P*>(shared_stage) : y;

    float sum = 0.0f;
    for (int i = threadIdx.x; i < n_packs; i += blockDim.x) {
      const P xv = x[i];
      P rv;
      if (residual != nullptr) rv = residual[i];
      P hv;
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        float v = to_float(xv.v[j]);
        if (p.has_dropout) {
          const uint64_t offset = static_cast<uint64_t>(row) * p.n_cols + i * VEC + j;
          v = apply_dropout(v, p.seed, offset, p.dropout_p, p.dropout_scale);
        }
        if (residual != nullptr) v = __fadd_rn(v, to_float(rv.v[j]));
        hv.v[j] = from_float<T>(v);
        sum += to_float(hv.v[j]);
      }
      if (h_out != nullptr) h_out[i] = hv;
      stage[i] = hv;
    }
    const float mean = block_sum(sum, scratch) / n;

    float squares = 0.0f;
    for (int i = threadIdx.x; i < n_packs; i += blockDim.x) {
      const P hv = stage[i];
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const float centered = to_float(hv.v[j]) - mean;
        squares += centered * centered;
      }
    }
    const float var = block_sum(squares, scratch) / n;
    const float rstd = 1.0f / sqrtf(var + p.eps);
    if (threadIdx.x == 0) {
      p.mean[row] = mean;
      p.rstd[row] = rstd;
    }

    for (int i = threadIdx.x; i < n_packs; i += blockDim.x) {
      const P hv = stage[i], wv = weight[i], bv = bias[i];
      P yv;
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const float centered = to_float(hv.v[j]) - mean;
        yv.v[j] = from_float<T>(centered * rstd * to_float(wv.v[j]) + to_float(bv.v[j]));
      }
      y[i] = yv;
    }
  }
}

template <typename T, int VEC>
__global__ void __launch_bounds__(kMaxThreads)
layer_norm_residual_bwd_rows_kernel(LayerNormResidualBwdParams p) {
  using P = Pack<T, VEC>;
  __shared__ float scratch[kWarpSize];
  const int n_packs = p.n_cols / VEC;
  const float n = static_cast<float>(p.n_cols);
  const P* weight = static_cast<const P*>(p.weight);

  for (int64_t row = blockIdx.x; row < p.rows; row += gridDim.x) {
    const P* dy = reinterpret_cast<const P*>(static_cast<const T*>(p.dy) + row * p.stride_dy);
    const P* h = reinterpret_cast<const P*>(static_cast<const T*>(p.h) + row * p.stride_h);
    const P* dh_out = p.dh_out == nullptr ? nullptr
        : reinterpret_cast<const P*>(static_cast<const T*>(p.dh_out) + row * p.stride_dh_out);
    P* dh = reinterpret_cast<P*>(static_cast<T*>(p.dh) + row * p.stride_dh);
    P* dx = p.has_dropout ? reinterpret_cast<P*>(static_cast<T*>(p.dx) + row * p.stride_dx) : nullptr;
    const float mean = p.mean[row], rstd = p.rstd[row];

    float sum_xhat_wdy = 0.0f, sum_wdy = 0.0f;
    for (int i = threadIdx.x; i < n_packs; i += blockDim.x) {
      const P hv = h[i], dyv = dy[i], wv = weight[i];
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const float xhat = (to_float(hv.v[j]) - mean) * rstd;
        // __fmul_rn: a rounded product that is never contracted into an FMA, so that w * dy
        // cancels exactly against the row mean of the same products (dh = 0 at hidden = 1).
        const float wdy = __fmul_rn(to_float(wv.v[j]), to_float(dyv.v[j]));
        sum_xhat_wdy += xhat * wdy;
        sum_wdy += wdy;
      }
    }
    const float c1 = block_sum(sum_xhat_wdy, scratch) / n;
    const float c2 = block_sum(sum_wdy, scratch) / n;

    for (int i = threadIdx.x; i < n_packs; i += blockDim.x) {
      const P hv = h[i], dyv = dy[i], wv = weight[i];
      P dho;
      if (dh_out != nullptr) dho = dh_out[i];
      P dhv, dxv;
#pragma unroll
      for (int j = 0; j < VEC; ++j) {
        const float xhat = (to_float(hv.v[j]) - mean) * rstd;
        const float wdy = __fmul_rn(to_float(wv.v[j]), to_float(dyv.v[j]));  // as above
        float grad = (wdy - (xhat * c1 + c2)) * rstd;
        if (dh_out != nullptr) grad += to_float(dho.v[j]);
        dhv.v[j] = from_float<T>(grad);
        if (p.has_dropout) {
          const uint64_t offset = static_cast<uint64_t>(row) * p.n_cols + i * VEC + j;
          dxv.v[j] = from_float<T>(apply_dropout(grad, p.seed, offset, p.dropout_p, p.dropout_scale));
        }
      }
      dh[i] = dhv;
      if (dx != nullptr) dx[i] = dxv;
    }
  }
}

// Block (kColTile, kRowLanes) sums column tile blockIdx.x over row chunk blockIdx.y.
template <typename T>
__global__ void __launch_bounds__(kColTile * kRowLanes)
layer_norm_residual_bwd_weight_kernel(LayerNormResidualBwdParams p, int64_t rows_per_chunk) {
  __shared__ float dweight_lanes[kRowLanes][kColTile];
  __shared__ float dbias_lanes[kRowLanes][kColTile];
  const int col = blockIdx.x * kColTile + threadIdx.x;
  const int64_t row_begin = static_cast<int64_t>(blockIdx.y) * rows_per_chunk;
  const int64_t row_end = min(row_begin + rows_per_chunk, p.rows);
  const T* dy = static_cast<const T*>(p.dy);
  const T* h = static_cast<const T*>(p.h);

  float dweight = 0.0f, dbias = 0.0f;
  if (col < p.n_cols) {
    for (int64_t row = row_begin + threadIdx.y; row < row_end; row += kRowLanes) {
      const float dyv = to_float(dy[row * p.stride_dy + col]);
      const float xhat = (to_float(h[row * p.stride_h + col]) - p.mean[row]) * p.rstd[row];
      dweight += dyv * xhat;
      dbias += dyv;
    }
  }
  dweight_lanes[threadIdx.y][threadIdx.x] = dweight;
  dbias_lanes[threadIdx.y][threadIdx.x] = dbias;
  __syncthreads();
  if (threadIdx.y == 0 && col < p.n_cols) {
    for (int lane = 1; lane < kRowLanes; ++lane) {
      dweight += dweight_lanes[lane][threadIdx.x];
      dbias += dbias_lanes[lane][threadIdx.x];
    }
    const int64_t out = static_cast<int64_t>(blockIdx.y) * p.n_cols + col;
    p.dweight_partial[out] = dweight;
    p.dbias_partial[out] = dbias;
  }
}

// Threads for a row of n_packs packs: about two packs per thread, whole warps, at most 1024.
int row_threads(int n_packs) {
  const int wanted = (n_packs + 1) / 2;
  const int warps = (wanted + kWarpSize - 1) / kWarpSize;
  return std::min(kMaxThreads, std::max(1, warps) * kWarpSize);
}

unsigned int row_grid(int64_t rows) { return static_cast<unsigned int>(std::min(rows, kMaxGridX)); }

bool fwd_can_vectorize(const LayerNormResidualFwdParams& p, int vec) {
  return p.n_cols % vec == 0 && p.stride_x % vec == 0 && p.stride_residual % vec == 0 &&
         p.stride_y % vec == 0 && p.stride_h % vec == 0 && aligned16(p.x) && aligned16(p.residual) &&
         aligned16(p.weight) && aligned16(p.bias) && aligned16(p.y) && aligned16(p.h);
}

bool bwd_can_vectorize(const LayerNormResidualBwdParams& p, int vec) {
  return p.n_cols % vec == 0 && p.stride_dy % vec == 0 && p.stride_dh_out % vec == 0 &&
         p.stride_h % vec == 0 && p.stride_dh % vec == 0 && p.stride_dx % vec == 0 &&
         aligned16(p.dy) && aligned16(p.dh_out) && aligned16(p.h) && aligned16(p.weight) &&
         aligned16(p.dh) && aligned16(p.dx);
}

template <typename T, int VEC>
cudaError_t launch_fwd(const LayerNormResidualFwdParams& p, cudaStream_t stream) {
  auto kernel = layer_norm_residual_fwd_kernel<T, VEC>;
  int device = 0, max_shared = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err == cudaSuccess) {
    err = cudaDeviceGetAttribute(&max_shared, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  }
  if (err != cudaSuccess) return err;
  // The static reduction scratch shares the per-block limit with the stage.
  const size_t stage_bytes = static_cast<size_t>(p.n_cols) * sizeof(T);
  const bool stage_in_shared = stage_bytes + sizeof(float) * kWarpSize <= static_cast<size_t>(max_shared);
  const size_t shared_bytes = stage_in_shared ? stage_bytes : 0;
  if (shared_bytes > 48 * 1024) {
    err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(shared_bytes));
    if (err != cudaSuccess) return err;
  }
  kernel<<<row_grid(p.rows), row_threads(p.n_cols / VEC), shared_bytes, stream>>>(p, stage_in_shared);
  return cudaGetLastError();
}

template <typename T>
cudaError_t dispatch_fwd(const LayerNormResidualFwdParams& p, cudaStream_t stream) {
  constexpr int kVec = 16 / sizeof(T);
  return fwd_can_vectorize(p, kVec) ? launch_fwd<T, kVec>(p, stream) : launch_fwd<T, 1>(p, stream);
}

template <typename T, int VEC>
cudaError_t launch_bwd_rows(const LayerNormResidualBwdParams& p, cudaStream_t stream) {
  layer_norm_residual_bwd_rows_kernel<T, VEC>
      <<<row_grid(p.rows), row_threads(p.n_cols / VEC), 0, stream>>>(p);
  return cudaGetLastError();
}

template <typename T>
cudaError_t dispatch_bwd(const LayerNormResidualBwdParams& p, cudaStream_t stream,
                         const char** failed_kernel) {
  constexpr int kVec = 16 / sizeof(T);
  *failed_kernel = "layer_norm_residual_bwd_rows_kernel";
  cudaError_t err = bwd_can_vectorize(p, kVec) ? launch_bwd_rows<T, kVec>(p, stream)
                                               : launch_bwd_rows<T, 1>(p, stream);
  if (err != cudaSuccess) return err;
  *failed_kernel = "layer_norm_residual_bwd_weight_kernel";
  const int64_t rows_per_chunk = (p.rows + p.chunks - 1) / p.chunks;
  const dim3 grid((p.n_cols + kColTile - 1) / kColTile, p.chunks);
  layer_norm_residual_bwd_weight_kernel<T><<<grid, dim3(kColTile, kRowLanes), 0, stream>>>(p, rows_per_chunk);
  err = cudaGetLastError();
  if (err == cudaSuccess) *failed_kernel = nullptr;
  return err;
}

}  // namespace

cudaError_t launch_layer_norm_residual_fwd(const LayerNormResidualFwdParams& params,
                                           ElementType dtype, cudaStream_t stream) {
  if (params.rows == 0) return cudaSuccess;
  switch (dtype) {
    case ElementType::kFloat32: return dispatch_fwd<float>(params, stream);
    case ElementType::kFloat16: return dispatch_fwd<__half>(params, stream);
    case ElementType::kBFloat16: return dispatch_fwd<__nv_bfloat16>(params, stream);
  }
  return cudaErrorInvalidValue;
}

int layer_norm_residual_bwd_chunks(int64_t rows, int n_cols) {
  int device = 0, sm_count = 1;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    (void)cudaGetLastError();  // fall back to one SM's worth; the launch reports real errors
    sm_count = 1;
  }
  // About four blocks per SM in all, each chunk giving every row lane at least one row.
  const int64_t col_tiles = (n_cols + kColTile - 1) / kColTile;
  const int64_t wanted = (4LL * sm_count + col_tiles - 1) / col_tiles;
  const int64_t most = std::min<int64_t>(kMaxGridY, std::max<int64_t>(1, (rows + kRowLanes - 1) / kRowLanes));
  return static_cast<int>(std::max<int64_t>(1, std::min(wanted, most)));
}

cudaError_t launch_layer_norm_residual_bwd(const LayerNormResidualBwdParams& params,
                                           ElementType dtype, cudaStream_t stream,
                                           const char** failed_kernel) {
  *failed_kernel = nullptr;
  if (params.rows == 0) return cudaSuccess;
  switch (dtype) {
    case ElementType::kFloat32: return dispatch_bwd<float>(params, stream, failed_kernel);
    case ElementType::kFloat16: return dispatch_bwd<__half>(params, stream, failed_kernel);
    case ElementType::kBFloat16: return dispatch_bwd<__nv_bfloat16>(params, stream, failed_kernel);
  }
  return cudaErrorInvalidValue;
}

}  // namespace fastattn
