// Dropout RNG shared by the CUDA kernels: Triton's `tl.rand(seed, offset)` reproduced bit for bit,
// so the cuda and triton backends (and fastattn.reference.dropout_keep_mask) draw the same mask.
//
// Philox-4x32 with 10 rounds, key (seed low, seed high), counter (offset low, offset high, 0, 0);
// an output word, read as int32 and folded onto [0, 2^31), is scaled into [0, 1) (tl.rand takes
// the first word; attention dropout all four, csrc/softmax_rows.cuh).
// Host-callable too (plain C++ without nvcc), so tests/cpu checks it against the Python port.
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#define FASTATTN_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define FASTATTN_HOST_DEVICE inline
#endif

namespace fastattn {

FASTATTN_HOST_DEVICE uint32_t philox_mulhi(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

// Triton's uint_to_uniform_float scale: the largest float with INT32_MAX * scale < 1.
constexpr float kPhiloxUintToUniform = 4.6566127342e-10f;

// The four output words of one evaluation: Triton's tl.randint4x(seed, offset).
struct PhiloxWords {
  uint32_t c0, c1, c2, c3;
};

FASTATTN_HOST_DEVICE PhiloxWords philox_words(uint64_t seed, uint64_t offset) {
  constexpr uint32_t kRoundA = 0xD2511F53u, kRoundB = 0xCD9E8D57u;
  constexpr uint32_t kKeyA = 0x9E3779B9u, kKeyB = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(offset), c1 = static_cast<uint32_t>(offset >> 32);
  uint32_t c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    const uint32_t old_c0 = c0, old_c2 = c2;
    c0 = philox_mulhi(kRoundB, old_c2) ^ c1 ^ k0;
    c2 = philox_mulhi(kRoundA, old_c0) ^ c3 ^ k1;
    c1 = kRoundB * old_c2;
    c3 = kRoundA * old_c0;
    k0 += kKeyA;
    k1 += kKeyB;
  }
  return {c0, c1, c2, c3};
}

// Triton's uint_to_uniform_float: x = bitcast<int32>(word); x = x < 0 ? -x - 1 : x; x * scale.
// (~x is -x - 1 without the overflow.)
FASTATTN_HOST_DEVICE float philox_word_to_uniform(uint32_t word) {
  int32_t x = static_cast<int32_t>(word);
  if (x < 0) x = ~x;
  return static_cast<float>(x) * kPhiloxUintToUniform;
}

// Triton's tl.rand(seed, offset): the first word.
FASTATTN_HOST_DEVICE float philox_uniform(uint64_t seed, uint64_t offset) {
  return philox_word_to_uniform(philox_words(seed, offset).c0);
}

// Word `index` (0-3) of an evaluation, by selects: an indexed array would live in local memory.
FASTATTN_HOST_DEVICE uint32_t philox_word(const PhiloxWords& w, int64_t index) {
  return (index & 2) ? ((index & 1) ? w.c3 : w.c2) : ((index & 1) ? w.c1 : w.c0);
}

}  // namespace fastattn
