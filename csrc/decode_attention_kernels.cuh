// The decode attention kernels (semantics in decode_attention.h). Kept apart from the launcher so
// that tests/cpu runs these very kernels on the host, one emulated thread per CUDA thread
// (tests/cuda_host_emulator.h), against fastattn.reference: the only place they run without a GPU.
// So: no early exit before a barrier or shuffle, every shuffle taken by the whole warp, and
// nothing a C++ compiler for the host lacks (no device intrinsics beyond those the emulator gives).
//
// Split kernel. A block: one batch row, one KV head, up to ROWS query rows, one slice of the keys.
// Its 128 threads are groups of TPK lanes; a group takes one key at a time, each lane a 16-byte
// vector of the head dim, so a warp reads 32 / TPK whole key rows per load instruction (coalesced).
// A group walks keys group, group + GROUPS, ... of the slice, kDecodeUnroll at once (their K and V
// loads all issued before any is used), keeping per row an online softmax: the running max m of
// the log2-domain logits, the sum l of exp2(logit - m) and the accumulated p * v. The groups'
// states are merged through shared memory at the end.
#pragma once

#include <math.h>
#include <stdint.h>

#include "common.cuh"
#include "decode_attention.h"

namespace fastattn {
namespace decode_kernels {

// Max of a and b where either may be -inf (no NaN): a plain comparison.
__device__ __forceinline__ float larger(float a, float b) { return a > b ? a : b; }

// exp2(x - m) for a running max m that may be -inf (nothing seen yet): then x is -inf too and the
// weight is 0, where exp2(-inf - -inf) would be NaN.
__device__ __forceinline__ float weight(float x, float m) {
  return m == -INFINITY ? 0.0f : exp2f(x - m);
}

// Sum over the TPK lanes of a group (aligned runs of TPK lanes of one warp).
template <int TPK>
__device__ __forceinline__ float group_sum(float v) {
#pragma unroll
  for (int offset = TPK / 2; offset > 0; offset /= 2) {
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  }
  return v;
}

// Two blocks an SM at least: with the thread count alone ptxas capped the float32 D=64 one-row
// kernel at 64 registers on sm_80 and spilled (aiming at eight blocks an SM).
template <typename T, int TPK, int ROWS>
__global__ void __launch_bounds__(kDecodeThreads, 2)
decode_attention_split_kernel(const DecodeAttentionParams p) {
  constexpr int VEC = kVec16<T>;
  constexpr int GROUPS = kDecodeThreads / TPK;
  constexpr int WIDTH = TPK * VEC;  // head dim columns the lanes cover (>= D)
  using Vec = Pack<T, VEC>;

  const int lane = threadIdx.x % TPK;
  const int group = threadIdx.x / TPK;
  const int64_t col = static_cast<int64_t>(lane) * VEC;
  const bool has_cols = col < p.head_dim;

  int64_t block = blockIdx.x;
  const int64_t row_group = block % p.row_groups;
  block /= p.row_groups;
  const int64_t kv_head = block % p.kv_heads;
  const int64_t batch = block / p.kv_heads;
  const int split = blockIdx.y;
  const int64_t key_begin = static_cast<int64_t>(split) * p.keys_per_split;
  const int64_t key_end =
      key_begin + p.keys_per_split < p.keys ? key_begin + p.keys_per_split : p.keys;

  const int64_t group_size = p.heads / p.kv_heads;
  const int64_t rows_per_kv_head = group_size * p.queries;
  // Per row: q (scaled into the log2 domain) and one past its last visible key.
  float q[ROWS][VEC];
  int64_t visible_end[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    const int64_t row = row_group * ROWS + r;
    const bool real = row < rows_per_kv_head;
    const int64_t head = kv_head * group_size + (real ? row / p.queries : 0);
    const int64_t query = real ? row % p.queries : 0;
    int64_t end = p.causal ? query + p.keys - p.queries + 1 : p.keys;
    visible_end[r] = real ? (end < 0 ? 0 : end) : 0;
    Vec loaded;
#pragma unroll
    for (int e = 0; e < VEC; ++e) loaded.v[e] = from_float<T>(0.0f);
    if (real && has_cols) {
      loaded = *reinterpret_cast<const Vec*>(static_cast<const T*>(p.q) + batch * p.stride_q_b +
                                             head * p.stride_q_h + query * p.stride_q_s + col);
    }
#pragma unroll
    for (int e = 0; e < VEC; ++e) q[r][e] = to_float(loaded.v[e]) * p.scale_log2;
  }

  const T* k_base =
      static_cast<const T*>(p.k) + batch * p.stride_k_b + kv_head * p.stride_k_h + col;
  const T* v_base =
      static_cast<const T*>(p.v) + batch * p.stride_v_b + kv_head * p.stride_v_h + col;
  const uint8_t* mask = p.key_padding_mask == nullptr
                            ? nullptr
                            : p.key_padding_mask + batch * p.stride_mask_b;

  float m[ROWS], l[ROWS], acc[ROWS][VEC];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int e = 0; e < VEC; ++e) acc[r][e] = 0.0f;
  }

  // Every thread of the block runs the same number of steps (the shuffles need whole warps).
  for (int64_t start = key_begin; start < key_end; start += GROUPS * kDecodeUnroll) {
    Vec k_vec[kDecodeUnroll], v_vec[kDecodeUnroll];
    bool live[kDecodeUnroll];
    int64_t key[kDecodeUnroll];
    // K and V load for every key of the slice, masked or not: made to wait for the mask byte, each
    // step took two memory round trips instead of one (a padded key's wasted read is the cheaper
    // cost). The mask decides afterwards: a hidden key's logit is -inf and its V is left out of
    // the sums, so whatever a padded position holds (NaN in an unwritten cache) never reaches the
    // output. (Zeroing the hidden V instead cost sm_90a 29 registers, a block an SM.)
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
      key[u] = start + u * GROUPS + group;
      const bool in_slice = key[u] < key_end;
      live[u] = in_slice && (mask == nullptr || mask[key[u]] != 0);
#pragma unroll
      for (int e = 0; e < VEC; ++e) k_vec[u].v[e] = v_vec[u].v[e] = from_float<T>(0.0f);
      if (in_slice && has_cols) {
        k_vec[u] = *reinterpret_cast<const Vec*>(k_base + key[u] * p.stride_k_s);
        v_vec[u] = *reinterpret_cast<const Vec*>(v_base + key[u] * p.stride_v_s);
      }
    }
    float logit[kDecodeUnroll][ROWS];
#pragma unroll
    for (int u = 0; u < kDecodeUnroll; ++u) {
#pragma unroll
      for (int r = 0; r < ROWS; ++r) {
        float dot = 0.0f;
#pragma unroll
        for (int e = 0; e < VEC; ++e) dot += q[r][e] * to_float(k_vec[u].v[e]);
        dot = group_sum<TPK>(dot);
        logit[u][r] = live[u] && key[u] < visible_end[r] ? dot : -INFINITY;
      }
    }
#pragma unroll
    for (int r = 0; r < ROWS; ++r) {
      float m_new = m[r];
#pragma unroll
      for (int u = 0; u < kDecodeUnroll; ++u) m_new = larger(m_new, logit[u][r]);
      const float rescale = weight(m[r], m_new);
      l[r] *= rescale;
#pragma unroll
      for (int e = 0; e < VEC; ++e) acc[r][e] *= rescale;
#pragma unroll
      for (int u = 0; u < kDecodeUnroll; ++u) {
        const float prob = weight(logit[u][r], m_new);
        l[r] += prob;
        if (live[u]) {  // prob is 0 otherwise, but 0 times a NaN in a padded V is NaN
#pragma unroll
          for (int e = 0; e < VEC; ++e) acc[r][e] += prob * to_float(v_vec[u].v[e]);
        }
      }
      m[r] = m_new;
    }
  }

  // Merge the groups: each group's (m, l) and accumulators through shared memory (at most
  // ROWS * 128 threads * 8 floats = 16 KB), then each output element from all groups.
  __shared__ float shared_m[GROUPS][ROWS], shared_l[GROUPS][ROWS];
  __shared__ float shared_acc[ROWS][GROUPS][WIDTH];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    if (lane == 0) {
      shared_m[group][r] = m[r];
      shared_l[group][r] = l[r];
    }
#pragma unroll
    for (int e = 0; e < VEC; ++e) shared_acc[r][group][col + e] = acc[r][e];
  }
  __syncthreads();

  const int64_t total_rows = p.batch * p.heads * p.queries;
  for (int index = threadIdx.x; index < ROWS * WIDTH; index += kDecodeThreads) {
    const int r = index / WIDTH;
    const int c = index % WIDTH;
    if (c >= p.head_dim || row_group * ROWS + r >= rows_per_kv_head) continue;
    float m_all = -INFINITY;
    for (int g = 0; g < GROUPS; ++g) m_all = larger(m_all, shared_m[g][r]);
    float l_all = 0.0f, o_all = 0.0f;
    for (int g = 0; g < GROUPS; ++g) {
      const float w = weight(shared_m[g][r], m_all);
      l_all += w * shared_l[g][r];
      o_all += w * shared_acc[r][g][c];
    }
    const float value = l_all > 0.0f ? o_all / l_all : 0.0f;
    // Recomputed, not kept per row from the start: an array indexed by this loop's r would live
    // in local memory (a stack frame).
    const int64_t group_row = row_group * ROWS + r;
    const int64_t query = group_row % p.queries;
    const int64_t head = kv_head * group_size + group_row / p.queries;
    if (p.splits == 1) {
      T* out = static_cast<T*>(p.out) + batch * p.stride_out_b + head * p.stride_out_h +
               query * p.stride_out_s;
      out[c] = from_float<T>(value);
    } else {
      const int64_t row = (batch * p.heads + head) * p.queries + query;
      p.partial_out[(split * total_rows + row) * p.head_dim + c] = value;
      if (c == 0) {
        p.partial_lse[split * total_rows + row] = l_all > 0.0f ? m_all + log2f(l_all) : -INFINITY;
      }
    }
  }
}

// Combine kernel: one thread per output element (row, column), the splits' partial outputs
// weighted by exp2(lse - max lse) (splits that saw no visible key weigh 0; no split saw one:
// zeros). A thread walks every split twice (the max, then the sums) with its loads unrolled: a
// warp per row walking the columns in turn waited on ~16 load round trips at B = 1, H = 32, 16
// splits, D = 128 (about as long as the split kernel's tail); this way 2-4. The lse loads of a row
// are the same for its threads (L1 broadcasts), the partials' coalesced along the columns.
constexpr int kCombineUnroll = 8;

template <typename T>
__global__ void __launch_bounds__(kDecodeThreads)
decode_attention_combine_kernel(const DecodeAttentionParams p) {
  const int64_t total_rows = p.batch * p.heads * p.queries;
  const int64_t item = static_cast<int64_t>(blockIdx.x) * kDecodeThreads + threadIdx.x;
  const int64_t row = item / p.head_dim, c = item % p.head_dim;
  if (row >= total_rows) return;  // no barrier or shuffle follows

  const float* lse = p.partial_lse + row;
  float m_all = -INFINITY;
#pragma unroll kCombineUnroll
  for (int s = 0; s < p.splits; ++s) m_all = larger(m_all, lse[s * total_rows]);
  float total = 0.0f, value = 0.0f;
  const float* partial = p.partial_out + row * p.head_dim + c;
  const int64_t split_stride = total_rows * p.head_dim;
#pragma unroll kCombineUnroll
  for (int s = 0; s < p.splits; ++s) {
    const float w = weight(lse[s * total_rows], m_all);
    total += w;
    value += w * partial[s * split_stride];
  }

  const int64_t query = row % p.queries, head = (row / p.queries) % p.heads;
  const int64_t batch = row / (p.queries * p.heads);
  T* out = static_cast<T*>(p.out) + batch * p.stride_out_b + head * p.stride_out_h +
           query * p.stride_out_s;
  out[c] = from_float<T>(total > 0.0f ? value / total : 0.0f);
}

using DecodeKernel = void (*)(const DecodeAttentionParams);

template <typename T, int TPK>
DecodeKernel split_kernel_for_rows(int64_t rows_per_kv_head) {
  switch (decode_rows_per_block(rows_per_kv_head)) {
    case 1: return decode_attention_split_kernel<T, TPK, 1>;
    case 2: return decode_attention_split_kernel<T, TPK, 2>;
    default: return decode_attention_split_kernel<T, TPK, kDecodeRowsPerBlock>;
  }
}

template <typename T>
DecodeKernel split_kernel(const DecodeAttentionParams& p) {
  const int64_t rows = p.heads / p.kv_heads * p.queries;
  switch (decode_lanes_per_key(p.head_dim, sizeof(T))) {
    case 2: return split_kernel_for_rows<T, 2>(rows);
    case 4: return split_kernel_for_rows<T, 4>(rows);
    case 8: return split_kernel_for_rows<T, 8>(rows);
    case 16: return split_kernel_for_rows<T, 16>(rows);
    case 32: return split_kernel_for_rows<T, 32>(rows);
    default: return nullptr;
  }
}

// Runs the split kernel and, for several splits, the combine kernel through
// `launch(kernel, grid)` (a CUDA launch of kDecodeThreads threads a block in decode_attention.cu;
// an emulated one in the host tests). False, launching nothing, for a call decode_attention.h
// does not support.
template <typename T, class Launch>
bool run_typed(const DecodeAttentionParams& p, Launch&& launch) {
  const DecodeKernel split = split_kernel<T>(p);
  if (split == nullptr) return false;
  launch(split, dim3(static_cast<unsigned>(p.batch * p.kv_heads * p.row_groups),
                     static_cast<unsigned>(p.splits)));
  if (p.splits > 1) {
    const int64_t items = p.batch * p.heads * p.queries * p.head_dim;
    launch(decode_attention_combine_kernel<T>,
           dim3(static_cast<unsigned>((items + kDecodeThreads - 1) / kDecodeThreads)));
  }
  return true;
}

template <class Launch>
bool run(const DecodeAttentionParams& p, ElementType dtype, Launch&& launch) {
  switch (dtype) {
    case ElementType::kFloat32: return run_typed<float>(p, launch);
    case ElementType::kFloat16: return run_typed<__half>(p, launch);
    case ElementType::kBFloat16: return run_typed<__nv_bfloat16>(p, launch);
  }
  return false;
}

}  // namespace decode_kernels
}  // namespace fastattn
