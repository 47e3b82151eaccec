// Host driver for csrc/decode_attention_kernels.cuh under tests/cuda_host_emulator.h (built and
// run by tests/cpu/test_cuda_decode_attention_host.py).
//
// decode_attention_driver IN OUT
// IN:  int64 dtype (0 float32, 1 float16, 2 bfloat16), B, H, Hkv, Sq, Sk, D, causal, has_mask,
//      kv_capacity (>= Sk: k and v are [B, Hkv, kv_capacity, D] buffers of which the first Sk keys
//      are used, as a static KV cache), sm_count; float64 scale; then float32 q [B, H, Sq, D],
//      k and v [B, Hkv, kv_capacity, D] (values representable in dtype) and, with has_mask,
//      uint8 key_padding_mask [B, Sk].
// OUT: int64 splits, then float32 out [B, H, Sq, D].
#include "cuda_host_emulator.h"

#include <cmath>
#include <cstdio>
#include <vector>

#include "decode_attention_kernels.cuh"

namespace {

template <typename T>
std::vector<T> converted(const std::vector<float>& values) {
  std::vector<T> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = fastattn::from_float<T>(values[i]);
  return out;
}

template <typename T>
float as_float(T v) { return fastattn::to_float(v); }

std::vector<float> read_floats(FILE* f, size_t n) {
  std::vector<float> v(n);
  if (n && std::fread(v.data(), sizeof(float), n, f) != n) std::abort();
  return v;
}

template <typename T>
int run(FILE* in, FILE* out, const int64_t* h, double scale) {
  const int64_t batch = h[1], heads = h[2], kv_heads = h[3], queries = h[4], keys = h[5];
  const int64_t head_dim = h[6], capacity = h[9];
  const bool causal = h[7] != 0, has_mask = h[8] != 0;
  const int sm_count = static_cast<int>(h[10]);
  auto q = converted<T>(read_floats(in, batch * heads * queries * head_dim));
  auto k = converted<T>(read_floats(in, batch * kv_heads * capacity * head_dim));
  auto v = converted<T>(read_floats(in, batch * kv_heads * capacity * head_dim));
  std::vector<uint8_t> mask(has_mask ? batch * keys : 0);
  if (has_mask && std::fread(mask.data(), 1, mask.size(), in) != mask.size()) return 1;
  std::vector<T> o(batch * heads * queries * head_dim, fastattn::from_float<T>(NAN));

  fastattn::DecodeAttentionParams p{};
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.out = o.data();
  p.key_padding_mask = has_mask ? mask.data() : nullptr;
  p.batch = batch;
  p.heads = heads;
  p.kv_heads = kv_heads;
  p.queries = queries;
  p.keys = keys;
  p.head_dim = head_dim;
  p.stride_q_s = head_dim;
  p.stride_q_h = queries * head_dim;
  p.stride_q_b = heads * queries * head_dim;
  p.stride_k_s = p.stride_v_s = head_dim;
  p.stride_k_h = p.stride_v_h = capacity * head_dim;
  p.stride_k_b = p.stride_v_b = kv_heads * capacity * head_dim;
  p.stride_out_s = head_dim;
  p.stride_out_h = queries * head_dim;
  p.stride_out_b = heads * queries * head_dim;
  p.stride_mask_b = keys;
  const int64_t rows_per_kv_head = heads / kv_heads * queries;
  const int rows_per_block = fastattn::decode_rows_per_block(rows_per_kv_head);
  p.row_groups = (rows_per_kv_head + rows_per_block - 1) / rows_per_block;
  const fastattn::DecodeSplit split = fastattn::decode_attention_split(
      batch * kv_heads * p.row_groups, keys,
      fastattn::decode_keys_per_step(head_dim, sizeof(T)), sm_count);
  p.splits = split.splits;
  p.keys_per_split = split.keys_per_split;
  p.causal = causal;
  p.scale_log2 = static_cast<float>(scale * 1.4426950408889634);
  std::vector<float> partial_out(p.splits > 1 ? p.splits * batch * heads * queries * head_dim : 0,
                                 NAN);
  std::vector<float> partial_lse(p.splits > 1 ? p.splits * batch * heads * queries : 0, NAN);
  p.partial_out = partial_out.data();
  p.partial_lse = partial_lse.data();

  const bool supported = fastattn::decode_kernels::run_typed<T>(
      p, [&](fastattn::decode_kernels::DecodeKernel kernel, dim3 grid) {
        cuda_host_emulator::launch(grid, dim3(fastattn::kDecodeThreads), kernel, p);
      });
  if (!supported) return 2;
  const int64_t splits = p.splits;
  std::fwrite(&splits, sizeof(splits), 1, out);
  std::vector<float> result(o.size());
  for (size_t i = 0; i < o.size(); ++i) result[i] = as_float(o[i]);
  std::fwrite(result.data(), sizeof(float), result.size(), out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return 1;
  FILE* in = std::fopen(argv[1], "rb");
  FILE* out = std::fopen(argv[2], "wb");
  if (in == nullptr || out == nullptr) return 1;
  int64_t header[11];
  double scale;
  if (std::fread(header, sizeof(int64_t), 11, in) != 11) return 1;
  if (std::fread(&scale, sizeof(scale), 1, in) != 1) return 1;
  int status = 1;
  switch (header[0]) {
    case 0: status = run<float>(in, out, header, scale); break;
    case 1: status = run<__half>(in, out, header, scale); break;
    case 2: status = run<__nv_bfloat16>(in, out, header, scale); break;
  }
  std::fclose(out);
  return status;
}
