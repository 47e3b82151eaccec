// Fused attention for decoding with a KV cache (a few queries against many keys): split-key
// "flash decoding" in CUDA C++, the cuda backend's path for such calls when nothing needs a
// backward (fastattn/backends/cuda_attention.py says when). Only bindings.cpp sees torch.
//
// q [B, H, Sq, D], k and v [B, Hkv, Sk, D] (Hkv divides H), out [B, H, Sq, D]: each with unit
// stride in D and its other strides free (multiples of the 16-byte vector, as the base pointers).
// The G = H / Hkv query heads of a KV head and their Sq queries are R = G * Sq rows that read the
// KV head together: a block takes up to kDecodeRowsPerBlock of them and one slice ("split") of the
// keys, so K and V are read once per row group, and the splits spread one sequence over the GPU.
//
// Key j is visible to query i when key_padding_mask[b, j] is non-zero (no mask: every key) and,
// under causal, j <= i + Sk - Sq (bottom-right aligned). A row with no visible key is zeros.
// Scores and the softmax are float32 (exp2 of logits scaled by scale * log2(e)). With one split a
// block writes its rows' outputs; with several, each split writes a float32 partial output
// normalised by its own sum and that sum's log2-sum-exp2, and a second kernel combines them.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include "element_type.h"
#include "philox.cuh"  // FASTATTN_HOST_DEVICE

namespace fastattn {

constexpr int kDecodeThreads = 128;        // threads per block of the split kernel
constexpr int kDecodeUnroll = 4;           // keys in flight per group of lanes per step
constexpr int kDecodeRowsPerBlock = 4;     // most query rows a block holds (1, 2 or 4)
constexpr int kDecodeMaxSplits = 256;

struct DecodeAttentionParams {
  const void* q;
  const void* k;
  const void* v;
  void* out;
  const uint8_t* key_padding_mask;  // [B, Sk] of 0/1 bytes (torch.bool); nullptr: none
  float* partial_out;               // [splits, B * H * Sq, D] (splits > 1 only)
  float* partial_lse;               // [splits, B * H * Sq], log2 domain; -inf: nothing visible
  int64_t batch, heads, kv_heads, queries, keys, head_dim;
  int64_t stride_q_b, stride_q_h, stride_q_s;
  int64_t stride_k_b, stride_k_h, stride_k_s;
  int64_t stride_v_b, stride_v_h, stride_v_s;
  int64_t stride_out_b, stride_out_h, stride_out_s;
  int64_t stride_mask_b;
  int64_t row_groups;               // ceil(G * Sq / rows per block)
  int64_t keys_per_split;           // a multiple of the split kernel's keys per step
  int splits;
  bool causal;
  float scale_log2;                 // scale * log2(e)
};

// Lanes that share one key: the head dim in 16-byte vectors, rounded up to a power of two (at
// least 2, the narrowest instantiation).
FASTATTN_HOST_DEVICE int decode_lanes_per_key(int64_t head_dim, int element_bytes) {
  const int64_t vectors = (head_dim * element_bytes + 15) / 16;
  int lanes = 2;
  while (lanes < vectors) lanes *= 2;
  return lanes;
}

// Whether the fused decode kernels take this call: D a whole number of 16-byte vectors, at most
// 32 of them (one warp a key: D <= 256 in 16-bit, <= 128 in float32).
FASTATTN_HOST_DEVICE bool decode_attention_supports(int64_t head_dim, int element_bytes) {
  return head_dim > 0 && (head_dim * element_bytes) % 16 == 0 && head_dim * element_bytes <= 512;
}

// Query rows a block holds for R rows per KV head: 1, 2 or kDecodeRowsPerBlock.
FASTATTN_HOST_DEVICE int decode_rows_per_block(int64_t rows_per_kv_head) {
  return rows_per_kv_head <= 1 ? 1 : (rows_per_kv_head == 2 ? 2 : kDecodeRowsPerBlock);
}

struct DecodeSplit {
  int splits;
  int64_t keys_per_split;
};

// How many slices the keys are cut into. `blocks_per_split`: B * Hkv * row groups. Enough blocks
// for about four per SM (each SM then keeps ~4 x 16 KB of K and V loads in flight, above the
// bandwidth-latency product), but no slice shorter than two steps of the kernel (keys_per_step =
// keys a block takes per step), whose partial output would cost more to combine than to compute.
// One slice (no combine kernel) for short caches.
FASTATTN_HOST_DEVICE DecodeSplit decode_attention_split(int64_t blocks_per_split, int64_t keys,
                                                        int64_t keys_per_step, int sm_count) {
  const int64_t target = 4 * static_cast<int64_t>(sm_count > 0 ? sm_count : 1);
  int64_t splits = (target + blocks_per_split - 1) / blocks_per_split;
  const int64_t longest = keys / (2 * keys_per_step);
  if (splits > longest) splits = longest;
  if (splits > kDecodeMaxSplits) splits = kDecodeMaxSplits;
  if (splits < 1) splits = 1;
  int64_t per_split = (keys + splits - 1) / splits;
  per_split = (per_split + keys_per_step - 1) / keys_per_step * keys_per_step;
  if (per_split < 1) per_split = keys_per_step;
  const int64_t used = (keys + per_split - 1) / per_split;  // every slice non-empty
  return DecodeSplit{static_cast<int>(used < 1 ? 1 : used), per_split};
}

// Keys a block of the split kernel takes per step for this head dim and element size.
FASTATTN_HOST_DEVICE int64_t decode_keys_per_step(int64_t head_dim, int element_bytes) {
  return (kDecodeThreads / decode_lanes_per_key(head_dim, element_bytes)) * kDecodeUnroll;
}

// Fills the launch plan of params (row_groups, splits, keys_per_split) from its shape fields
// (batch, heads, kv_heads, queries, keys, head_dim) for elements of `element_bytes` on a GPU of
// `sm_count` SMs. The binding and the host tests both plan through it.
FASTATTN_HOST_DEVICE void plan_decode_attention(DecodeAttentionParams& params, int element_bytes,
                                                int sm_count) {
  const int64_t rows_per_kv_head = params.heads / params.kv_heads * params.queries;
  const int rows_per_block = decode_rows_per_block(rows_per_kv_head);
  params.row_groups = (rows_per_kv_head + rows_per_block - 1) / rows_per_block;
  const DecodeSplit split = decode_attention_split(
      params.batch * params.kv_heads * params.row_groups, params.keys,
      decode_keys_per_step(params.head_dim, element_bytes), sm_count);
  params.splits = split.splits;
  params.keys_per_split = split.keys_per_split;
}

// Launches the split kernel and, for splits > 1, the combine kernel. The caller sets every field
// (the plan through plan_decode_attention) and allocates the partial buffers.
// Requires decode_attention_supports; B * H * Sq == 0 or Sk == 0 is the caller's (zeros).
cudaError_t launch_decode_attention(const DecodeAttentionParams& params, ElementType dtype,
                                    cudaStream_t stream);

}  // namespace fastattn
