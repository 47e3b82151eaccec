// Host driver for csrc/decode_attention_kernels.cuh under tests/cuda_host_emulator.h (built and
// run by tests/cpu/test_cuda_decode_attention_host.py).
//
// decode_attention_driver IN OUT
// IN:  int64 dtype (0 float32, 1 float16, 2 bfloat16), B, H, Hkv, Sq, Sk, D, causal, has_mask,
//      kv_capacity (>= Sk: k and v are [B, Hkv, kv_capacity, D] buffers of which the first Sk keys
//      are used, as a static KV cache), sm_count; float64 scale; then float32 q [B, H, Sq, D],
//      k and v [B, Hkv, kv_capacity, D] (values representable in dtype) and, with has_mask,
//      uint8 key_padding_mask [B, Sk].
// OUT: float32: the number of key splits, then out [B, H, Sq, D].
#include "cuda_host_emulator.h"

#include "decode_attention_kernels.cuh"
#include "emulated_driver.h"

int main(int argc, char** argv) {
  using namespace emulated_driver;
  return emulated_driver::main<11, 1>(argc, argv, [](auto element, fastattn::ElementType,
                                                     FILE* in, FILE* out, const long long* h,
                                                     const double* f) {
    using T = decltype(element);
    const int64_t batch = h[1], heads = h[2], kv_heads = h[3], queries = h[4], keys = h[5];
    const int64_t head_dim = h[6], capacity = h[9];
    const bool has_mask = h[8] != 0;
    std::vector<float> q(batch * heads * queries * head_dim);
    std::vector<float> k(batch * kv_heads * capacity * head_dim), v(k.size());
    std::vector<uint8_t> mask(has_mask ? batch * keys : 0);
    if (!read(in, q) || !read(in, k) || !read(in, v) || !read(in, mask)) return 1;
    std::vector<T> tq = typed<T>(q), tk = typed<T>(k), tv = typed<T>(v);
    std::vector<T> o = unwritten<T>(q.size());

    fastattn::DecodeAttentionParams p{};
    p.q = tq.data();
    p.k = tk.data();
    p.v = tv.data();
    p.out = o.data();
    p.key_padding_mask = has_mask ? mask.data() : nullptr;
    p.batch = batch;
    p.heads = heads;
    p.kv_heads = kv_heads;
    p.queries = queries;
    p.keys = keys;
    p.head_dim = head_dim;
    p.stride_q_s = p.stride_out_s = head_dim;
    p.stride_q_h = p.stride_out_h = queries * head_dim;
    p.stride_q_b = p.stride_out_b = heads * queries * head_dim;
    p.stride_k_s = p.stride_v_s = head_dim;
    p.stride_k_h = p.stride_v_h = capacity * head_dim;
    p.stride_k_b = p.stride_v_b = kv_heads * capacity * head_dim;
    p.stride_mask_b = keys;
    fastattn::plan_decode_attention(p, sizeof(T), static_cast<int>(h[10]));
    p.causal = h[7] != 0;
    p.scale_log2 = static_cast<float>(f[0] * 1.4426950408889634);
    const int64_t rows = batch * heads * queries;
    const int64_t partial_rows = p.splits > 1 ? p.splits * rows : 0;
    std::vector<float> partial_out = unwritten<float>(partial_rows * head_dim);
    std::vector<float> partial_lse = unwritten<float>(partial_rows);
    p.partial_out = partial_out.data();
    p.partial_lse = partial_lse.data();

    const bool supported = fastattn::decode_kernels::run_typed<T>(
        p, [&](fastattn::decode_kernels::DecodeKernel kernel, dim3 grid) {
          cuda_host_emulator::launch(grid, dim3(fastattn::kDecodeThreads), kernel, p);
        });
    if (!supported) return 2;
    write(out, std::vector<float>{static_cast<float>(p.splits)});
    write(out, o);
    return 0;
  });
}
