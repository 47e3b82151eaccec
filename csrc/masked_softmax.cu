// Scaled masked softmax; semantics match kernels/masked_softmax.py and
// fastattn.reference.masked_softmax (see masked_softmax.h).
//
// Rows up to kWarpRowMaxCols elements: one warp per row, the row held in registers, the kernel
// specialised at compile time on the row length rounded up to a power of two (apex's
// scaled_masked_softmax design), so its loops unroll and nothing is read twice. Longer rows, of any
// length: one block per row, an online max/sum pass, then a pass that re-reads (mostly from L2) and
// writes. 16-byte vectors are used when Sk, both row strides and both pointers allow; any Sk works.
//
// Logits live in the log2 domain (scale * log2(e) * x) so exp2f does the exponentials. The causal
// mask comes from the row index, never from memory, and keys past a row's visible end are not read.
//
// Attention dropout (kDropout kernels) happens where the probabilities are written: the forward
// writes both the probabilities (which the backward needs at dropped keys too) and the dropped ones
// (the second GEMM's operand); the backward regenerates the keep mask from Philox, the stream of
// Triton's tl.rand, so no mask is stored. A compile-time flag, not a branch, so the plain softmax
// keeps its register budget.

#include "masked_softmax.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <type_traits>

#include "common.cuh"
#include "philox.cuh"

namespace fastattn {
namespace {

constexpr float kLog2e = 1.4426950408889634f;
// Longest row one warp holds: 64 float32 per lane (the backward keeps two such rows, packed).
constexpr int kWarpRowMaxCols = 2048;
constexpr int kWarpsPerBlock = 4;        // warp path: rows per block
constexpr int kBlockRowThreads = 512;    // block path: threads per row
constexpr int64_t kMaxGrid = 2147483647;
// Every kernel says __launch_bounds__(threads, 1): with the default, ptxas aimed at a higher
// occupancy for some no-dropout variants (fp16 block path, fp32 1024/2048 columns) and paid with a
// stack frame and spills once the params carried the attention fields; one block per SM as the
// floor lets it keep values in registers (the register counts stay well under the 255 cap).

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  }
  return v;
}

// The keys a row may see: columns below visible_end (causality, varlen) that the padding mask keeps.
struct RowVisibility {
  const uint8_t* mask;    // this row's batch row of key_padding_mask, or nullptr
  int64_t visible_end;

  __device__ __forceinline__ bool visible(int64_t col) const {
    return col < visible_end && (mask == nullptr || mask[col] != 0);
  }
};

__device__ __forceinline__ RowVisibility row_visibility(const MaskedSoftmaxFwdParams& p, int64_t row) {
  RowVisibility vis;
  vis.mask = p.key_padding_mask == nullptr
      ? nullptr : p.key_padding_mask + (row / p.shape.rows_per_batch) * p.stride_mask;
  vis.visible_end = softmax_row_visible_end(p.shape, row);
  return vis;
}

__device__ __forceinline__ bool dropout_keeps(float prob, const SoftmaxDropout& d, int64_t row,
                                              int64_t n_cols, int64_t col) {
  return prob != 0.0f && attention_dropout_uniform(d.seed, row, n_cols, col) >= d.p;
}

// The dropped row of the probabilities, typed (only read under kDropout).
template <typename T>
__device__ __forceinline__ T* dropped_row(const SoftmaxDropout& d, int64_t row) {
  return static_cast<T*>(d.dropped) + row * d.stride_dropped;
}

// scale * log2(e) * x for a visible key, -inf for a hidden one (exp2 of it is 0).
template <typename T>
__device__ __forceinline__ float log2_logit(T value, int64_t col, const RowVisibility& vis,
                                            float scale_log2) {
  return vis.visible(col) ? to_float(value) * scale_log2 : -INFINITY;
}

// Shift subtracted before exp2: the row max, or 0 for a row with nothing visible so that every
// exp2(-inf - shift) is 0 instead of NaN.
__device__ __forceinline__ float safe_shift(float row_max) {
  return row_max == -INFINITY ? 0.0f : row_max;
}

// 1 / sum, or 0 for a row with nothing visible (its output is zeros).
__device__ __forceinline__ float safe_reciprocal(float sum) { return sum > 0.0f ? 1.0f / sum : 0.0f; }

// Keep bits (bit v: element v) of the probabilities of one pack starting at column `col`.
template <typename T, int VEC>
__device__ __forceinline__ uint64_t kept_bits(const Pack<T, VEC>& probs, const SoftmaxDropout& d,
                                              int64_t row, int64_t n_cols, int64_t col) {
  uint64_t kept = 0;
#pragma unroll
  for (int v = 0; v < VEC; ++v) {
    kept |= static_cast<uint64_t>(dropout_keeps(to_float(probs.v[v]), d, row, n_cols, col + v)) << v;
  }
  return kept;
}

// The dropped probabilities prob * keep / (1 - p) of one pack, from its keep bits. Computed from the
// probabilities as stored (rounded to T), so the forward and the backward, which regenerates them
// for the dV GEMM, produce the same bits.
template <typename T, int VEC>
__device__ __forceinline__ Pack<T, VEC> dropped_pack(const Pack<T, VEC>& probs, uint64_t kept,
                                                     const SoftmaxDropout& d) {
  Pack<T, VEC> dropped;
#pragma unroll
  for (int v = 0; v < VEC; ++v) {
    dropped.v[v] = from_float<T>((kept >> v) & 1u ? __fmul_rn(to_float(probs.v[v]), d.scale) : 0.0f);
  }
  return dropped;
}

// The gradient of the undropped probability from that of the dropped one: dy * keep / (1 - p).
template <bool kDropout, typename T>
__device__ __forceinline__ float dropout_grad(T dy, uint64_t kept, int bit, const SoftmaxDropout& d) {
  if constexpr (kDropout) {
    return (kept >> bit) & 1u ? __fmul_rn(to_float(dy), d.scale) : 0.0f;
  } else {
    return to_float(dy);
  }
}

// ---------------------------------------------------------------------------------------------
// Warp per row. Lane `lane` holds packs lane, lane + 32, ... (VEC elements each), so every load
// instruction of the warp covers 32 adjacent packs. kCols is the row length rounded up.

template <int VEC>
__device__ __forceinline__ int64_t warp_pack_col(int pack, int lane) {
  return (static_cast<int64_t>(pack) * kWarpSize + lane) * VEC;
}

template <typename T, int kCols, int VEC, bool kDropout>
__global__ void __launch_bounds__(kWarpsPerBlock * kWarpSize, 1)
masked_softmax_fwd_warp_kernel(MaskedSoftmaxFwdParams p) {
  using P = Pack<T, VEC>;
  constexpr int kPacks = kCols / (kWarpSize * VEC);
  const int lane = threadIdx.x % kWarpSize;
  const float scale_log2 = p.scale * kLog2e;
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
       row < p.rows; row += static_cast<int64_t>(gridDim.x) * kWarpsPerBlock) {
    const RowVisibility vis = row_visibility(p, row);
    const T* scores = static_cast<const T*>(p.scores) + row * p.stride_scores;
    float values[kPacks][VEC];
    float row_max = -INFINITY;
#pragma unroll
    for (int k = 0; k < kPacks; ++k) {
      const int64_t col = warp_pack_col<VEC>(k, lane);
      P pack{};
      // n_cols is a multiple of VEC, so a pack that starts inside the row ends inside it.
      if (col < vis.visible_end) pack = *reinterpret_cast<const P*>(scores + col);
#pragma unroll
      for (int v = 0; v < VEC; ++v) {
        values[k][v] = log2_logit(pack.v[v], col + v, vis, scale_log2);
        row_max = fmaxf(row_max, values[k][v]);
      }
    }
    const float shift = safe_shift(warp_max(row_max));
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < kPacks; ++k) {
#pragma unroll
      for (int v = 0; v < VEC; ++v) {
        values[k][v] = exp2f(values[k][v] - shift);
        sum += values[k][v];
      }
    }
    const float inv_sum = safe_reciprocal(warp_sum(sum));
    T* out = static_cast<T*>(p.out) + row * p.stride_out;
#pragma unroll
    for (int k = 0; k < kPacks; ++k) {
      const int64_t col = warp_pack_col<VEC>(k, lane);
      if (col >= p.shape.n_cols) continue;
      P pack;
#pragma unroll
      for (int v = 0; v < VEC; ++v) pack.v[v] = from_float<T>(values[k][v] * inv_sum);
      *reinterpret_cast<P*>(out + col) = pack;
      if constexpr (kDropout) {
        *reinterpret_cast<P*>(dropped_row<T>(p.dropout, row) + col) =
            dropped_pack(pack, kept_bits(pack, p.dropout, row, p.shape.n_cols, col), p.dropout);
      }
    }
  }
}

template <typename T, int kCols, int VEC, bool kDropout>
__global__ void __launch_bounds__(kWarpsPerBlock * kWarpSize, 1)
masked_softmax_bwd_warp_kernel(MaskedSoftmaxBwdParams p) {
  using P = Pack<T, VEC>;
  constexpr int kPacks = kCols / (kWarpSize * VEC);
  const int lane = threadIdx.x % kWarpSize;
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
       row < p.rows; row += static_cast<int64_t>(gridDim.x) * kWarpsPerBlock) {
    const T* y_row = static_cast<const T*>(p.out) + row * p.stride_out;
    const T* dy_row = static_cast<const T*>(p.grad_out) + row * p.stride_grad_out;
    // Kept in the element type: half the registers of float32 for 16-bit types.
    P y[kPacks], dy[kPacks];
    // Under dropout, bit k * VEC + v says whether element v of pack k was kept (a row holds at most
    // kWarpRowMaxCols / kWarpSize = 64 elements per lane), so the second pass draws nothing.
    uint64_t kept = 0;
    float dot = 0.0f;
#pragma unroll
    for (int k = 0; k < kPacks; ++k) {
      const int64_t col = warp_pack_col<VEC>(k, lane);
      y[k] = P{};
      dy[k] = P{};
      if (col < p.n_cols) {
        y[k] = *reinterpret_cast<const P*>(y_row + col);
        dy[k] = *reinterpret_cast<const P*>(dy_row + col);
        if constexpr (kDropout) {
          const uint64_t pack_kept = kept_bits(y[k], p.dropout, row, p.n_cols, col);
          kept |= pack_kept << (k * VEC);
          *reinterpret_cast<P*>(dropped_row<T>(p.dropout, row) + col) =
              dropped_pack(y[k], pack_kept, p.dropout);
        }
      }
#pragma unroll
      for (int v = 0; v < VEC; ++v) {
        dot += to_float(y[k].v[v]) * dropout_grad<kDropout>(dy[k].v[v], kept, k * VEC + v, p.dropout);
      }
    }
    dot = warp_sum(dot);
    T* dx_row = static_cast<T*>(p.grad_in) + row * p.stride_grad_in;
#pragma unroll
    for (int k = 0; k < kPacks; ++k) {
      const int64_t col = warp_pack_col<VEC>(k, lane);
      if (col >= p.n_cols) continue;
      P dx;
#pragma unroll
      for (int v = 0; v < VEC; ++v) {
        const float g = dropout_grad<kDropout>(dy[k].v[v], kept, k * VEC + v, p.dropout);
        dx.v[v] = from_float<T>(p.scale * to_float(y[k].v[v]) * (g - dot));
      }
      *reinterpret_cast<P*>(dx_row + col) = dx;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Block per row, for rows longer than a warp holds.

// Running softmax statistics: max (log2 domain) and the sum of exp2(x - max).
struct MaxSum {
  float max;
  float sum;
};

// Commutative bit for bit (max and a sum of two products), so every lane of a butterfly and every
// thread reading the warp totals in order ends with the same value.
__device__ __forceinline__ MaxSum combine(MaxSum a, MaxSum b) {
  const float m = fmaxf(a.max, b.max);
  if (m == -INFINITY) return {m, 0.0f};
  return {m, a.sum * exp2f(a.max - m) + b.sum * exp2f(b.max - m)};
}

// The statistics of the whole block, returned to every thread; `scratch` holds kWarpSize entries.
__device__ __forceinline__ MaxSum block_max_sum(MaxSum v, MaxSum* scratch) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int n_warps = (blockDim.x + kWarpSize - 1) / kWarpSize;
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const MaxSum other{__shfl_xor_sync(0xffffffffu, v.max, offset),
                       __shfl_xor_sync(0xffffffffu, v.sum, offset)};
    v = combine(v, other);
  }
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  MaxSum total{-INFINITY, 0.0f};
  for (int i = 0; i < n_warps; ++i) total = combine(total, scratch[i]);
  __syncthreads();
  return total;
}

template <typename T, int VEC, bool kDropout>
__global__ void __launch_bounds__(kBlockRowThreads, 1)
masked_softmax_fwd_block_kernel(MaskedSoftmaxFwdParams p) {
  using P = Pack<T, VEC>;
  __shared__ MaxSum scratch[kWarpSize];
  const float scale_log2 = p.scale * kLog2e;
  const int64_t n_cols = p.shape.n_cols, n_packs = n_cols / VEC;
  for (int64_t row = blockIdx.x; row < p.rows; row += gridDim.x) {
    const RowVisibility vis = row_visibility(p, row);
    const P* scores = reinterpret_cast<const P*>(static_cast<const T*>(p.scores) + row * p.stride_scores);
    P* out = reinterpret_cast<P*>(static_cast<T*>(p.out) + row * p.stride_out);
    const int64_t visible_packs = (vis.visible_end + VEC - 1) / VEC;

    MaxSum stats{-INFINITY, 0.0f};
    for (int64_t i = threadIdx.x; i < visible_packs; i += blockDim.x) {
      const P pack = scores[i];
      float x[VEC];
      float pack_max = -INFINITY;
#pragma unroll
      for (int v = 0; v < VEC; ++v) {
        x[v] = log2_logit(pack.v[v], i * VEC + v, vis, scale_log2);
        pack_max = fmaxf(pack_max, x[v]);
      }
      if (pack_max == -INFINITY) continue;
      const float new_max = fmaxf(stats.max, pack_max);
      float sum = stats.sum * exp2f(stats.max - new_max);
#pragma unroll
      for (int v = 0; v < VEC; ++v) sum += exp2f(x[v] - new_max);
      stats = {new_max, sum};
    }
    stats = block_max_sum(stats, scratch);
    const float shift = safe_shift(stats.max);
    const float inv_sum = safe_reciprocal(stats.sum);

    for (int64_t i = threadIdx.x; i < n_packs; i += blockDim.x) {
      P pack{};
      if (i < visible_packs) pack = scores[i];
#pragma unroll
      for (int v = 0; v < VEC; ++v) {
        const float x = log2_logit(pack.v[v], i * VEC + v, vis, scale_log2);
        pack.v[v] = from_float<T>(exp2f(x - shift) * inv_sum);
      }
      out[i] = pack;
      if constexpr (kDropout) {
        reinterpret_cast<P*>(dropped_row<T>(p.dropout, row))[i] =
            dropped_pack(pack, kept_bits(pack, p.dropout, row, n_cols, i * VEC), p.dropout);
      }
    }
  }
}

// Under dropout both passes draw the keep mask (a row this long has too many elements per thread to
// keep their bits): twice the Philox work, for rows past kWarpRowMaxCols only.
template <typename T, int VEC, bool kDropout>
__global__ void __launch_bounds__(kBlockRowThreads, 1)
masked_softmax_bwd_block_kernel(MaskedSoftmaxBwdParams p) {
  using P = Pack<T, VEC>;
  __shared__ float scratch[kWarpSize];
  const int64_t n_packs = p.n_cols / VEC;
  for (int64_t row = blockIdx.x; row < p.rows; row += gridDim.x) {
    const P* y = reinterpret_cast<const P*>(static_cast<const T*>(p.out) + row * p.stride_out);
    const P* dy = reinterpret_cast<const P*>(static_cast<const T*>(p.grad_out) + row * p.stride_grad_out);
    P* dx = reinterpret_cast<P*>(static_cast<T*>(p.grad_in) + row * p.stride_grad_in);
    float dot = 0.0f;
    for (int64_t i = threadIdx.x; i < n_packs; i += blockDim.x) {
      const P yv = y[i], dyv = dy[i];
      const uint64_t kept = kDropout ? kept_bits(yv, p.dropout, row, p.n_cols, i * VEC) : 0;
#pragma unroll
      for (int v = 0; v < VEC; ++v) {
        dot += to_float(yv.v[v]) * dropout_grad<kDropout>(dyv.v[v], kept, v, p.dropout);
      }
      if constexpr (kDropout) {
        reinterpret_cast<P*>(dropped_row<T>(p.dropout, row))[i] = dropped_pack(yv, kept, p.dropout);
      }
    }
    dot = block_sum(dot, scratch);
    for (int64_t i = threadIdx.x; i < n_packs; i += blockDim.x) {
      const P yv = y[i], dyv = dy[i];
      const uint64_t kept = kDropout ? kept_bits(yv, p.dropout, row, p.n_cols, i * VEC) : 0;
      P dxv;
#pragma unroll
      for (int v = 0; v < VEC; ++v) {
        const float g = dropout_grad<kDropout>(dyv.v[v], kept, v, p.dropout);
        dxv.v[v] = from_float<T>(p.scale * to_float(yv.v[v]) * (g - dot));
      }
      dx[i] = dxv;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Host side: vector width, warp or block path, and the row-length bucket.

bool rows_vectorize(int64_t n_cols, int vec, const void* a, int64_t stride_a, const void* b,
                    int64_t stride_b) {
  return n_cols % vec == 0 && stride_a % vec == 0 && stride_b % vec == 0 && aligned16(a) &&
         aligned16(b);
}

// Calls fn(std::integral_constant<int, kCols>{}) with kCols = n_cols rounded up to a power of two
// in [32, kWarpRowMaxCols].
template <typename Fn>
cudaError_t with_warp_row_bucket(int64_t n_cols, Fn&& fn) {
  if (n_cols <= 32) return fn(std::integral_constant<int, 32>{});
  if (n_cols <= 64) return fn(std::integral_constant<int, 64>{});
  if (n_cols <= 128) return fn(std::integral_constant<int, 128>{});
  if (n_cols <= 256) return fn(std::integral_constant<int, 256>{});
  if (n_cols <= 512) return fn(std::integral_constant<int, 512>{});
  if (n_cols <= 1024) return fn(std::integral_constant<int, 1024>{});
  static_assert(kWarpRowMaxCols == 2048, "extend the buckets with kWarpRowMaxCols");
  return fn(std::integral_constant<int, 2048>{});
}

unsigned int warp_path_grid(int64_t rows) {
  return static_cast<unsigned int>(std::min((rows + kWarpsPerBlock - 1) / kWarpsPerBlock, kMaxGrid));
}

unsigned int block_path_grid(int64_t rows) { return static_cast<unsigned int>(std::min(rows, kMaxGrid)); }

// Picks the path for rows of n_cols elements and calls
// launch(std::integral_constant<int, kCols>, std::integral_constant<int, VEC>, grid, block),
// with kCols = kBlockPath for the block path, else the warp path's row-length bucket.
constexpr int kBlockPath = 0;

template <typename T, typename Launch>
cudaError_t launch_row_kernel(int64_t n_cols, int64_t rows, bool vectorize, Launch&& launch) {
  constexpr int kVec = kVec16<T>;
  if (n_cols > kWarpRowMaxCols) {
    const std::integral_constant<int, kBlockPath> block_path;
    const dim3 grid(block_path_grid(rows)), block(kBlockRowThreads);
    return vectorize ? launch(block_path, std::integral_constant<int, kVec>{}, grid, block)
                     : launch(block_path, std::integral_constant<int, 1>{}, grid, block);
  }
  return with_warp_row_bucket(n_cols, [&](auto cols) {
    constexpr int kWarpVec = std::min(kVec, decltype(cols)::value / kWarpSize);
    const dim3 grid(warp_path_grid(rows)), block(kWarpsPerBlock * kWarpSize);
    return vectorize ? launch(cols, std::integral_constant<int, kWarpVec>{}, grid, block)
                     : launch(cols, std::integral_constant<int, 1>{}, grid, block);
  });
}

// Calls fn(std::bool_constant<kDropout>{}) with kDropout = whether the dropped probabilities are
// written; `vectorize` also asks that their rows allow 16-byte vectors.
template <typename T, typename Fn>
cudaError_t with_dropout_flag(const SoftmaxDropout& d, int64_t n_cols, bool& vectorize, Fn&& fn) {
  if (d.dropped == nullptr) return fn(std::false_type{});
  vectorize = vectorize && rows_vectorize(n_cols, kVec16<T>, d.dropped, d.stride_dropped, nullptr, 0);
  return fn(std::true_type{});
}

template <typename T>
cudaError_t dispatch_fwd(const MaskedSoftmaxFwdParams& p, cudaStream_t stream) {
  const int64_t n_cols = p.shape.n_cols;
  bool vectorize = rows_vectorize(n_cols, kVec16<T>, p.scores, p.stride_scores, p.out, p.stride_out);
  return with_dropout_flag<T>(p.dropout, n_cols, vectorize, [&](auto dropout) {
    constexpr bool kDropout = decltype(dropout)::value;
    const auto launch = [&](auto cols, auto vec, dim3 grid, dim3 block) {
      constexpr int kCols = decltype(cols)::value, kVec = decltype(vec)::value;
      if constexpr (kCols == kBlockPath) {
        masked_softmax_fwd_block_kernel<T, kVec, kDropout><<<grid, block, 0, stream>>>(p);
      } else {
        masked_softmax_fwd_warp_kernel<T, kCols, kVec, kDropout><<<grid, block, 0, stream>>>(p);
      }
      return cudaGetLastError();
    };
    return launch_row_kernel<T>(n_cols, p.rows, vectorize, launch);
  });
}

template <typename T>
cudaError_t dispatch_bwd(const MaskedSoftmaxBwdParams& p, cudaStream_t stream) {
  bool vectorize =
      rows_vectorize(p.n_cols, kVec16<T>, p.out, p.stride_out, p.grad_out, p.stride_grad_out) &&
      rows_vectorize(p.n_cols, kVec16<T>, p.grad_in, p.stride_grad_in, nullptr, 0);
  return with_dropout_flag<T>(p.dropout, p.n_cols, vectorize, [&](auto dropout) {
    constexpr bool kDropout = decltype(dropout)::value;
    const auto launch = [&](auto cols, auto vec, dim3 grid, dim3 block) {
      constexpr int kCols = decltype(cols)::value, kVec = decltype(vec)::value;
      if constexpr (kCols == kBlockPath) {
        masked_softmax_bwd_block_kernel<T, kVec, kDropout><<<grid, block, 0, stream>>>(p);
      } else {
        masked_softmax_bwd_warp_kernel<T, kCols, kVec, kDropout><<<grid, block, 0, stream>>>(p);
      }
      return cudaGetLastError();
    };
    return launch_row_kernel<T>(p.n_cols, p.rows, vectorize, launch);
  });
}

}  // namespace

cudaError_t launch_masked_softmax_fwd(const MaskedSoftmaxFwdParams& params, ElementType dtype,
                                      cudaStream_t stream) {
  if (params.rows == 0 || params.shape.n_cols == 0) return cudaSuccess;
  switch (dtype) {
    case ElementType::kFloat32: return dispatch_fwd<float>(params, stream);
    case ElementType::kFloat16: return dispatch_fwd<__half>(params, stream);
    case ElementType::kBFloat16: return dispatch_fwd<__nv_bfloat16>(params, stream);
  }
  return cudaErrorInvalidValue;
}

cudaError_t launch_masked_softmax_bwd(const MaskedSoftmaxBwdParams& params, ElementType dtype,
                                      cudaStream_t stream) {
  if (params.rows == 0 || params.n_cols == 0) return cudaSuccess;
  switch (dtype) {
    case ElementType::kFloat32: return dispatch_bwd<float>(params, stream);
    case ElementType::kFloat16: return dispatch_bwd<__half>(params, stream);
    case ElementType::kBFloat16: return dispatch_bwd<__nv_bfloat16>(params, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace fastattn
