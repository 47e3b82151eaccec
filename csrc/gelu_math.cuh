// GELU and its derivative in float32, shared by the CUDA kernels and callable on the host, so
// tests/cpu checks them with g++ against torch's float64 GELU (as philox.cuh is checked).
//   erf ("none", BERT):       gelu(z) = z * Phi(z) = 0.5 z (1 + erf(z / sqrt 2))
//   tanh (GPT2's gelu_new):   gelu(z) = 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))
#pragma once

#include <math.h>

#if !defined(FASTATTN_HOST_DEVICE)
#if defined(__CUDACC__)
#define FASTATTN_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define FASTATTN_HOST_DEVICE inline
#endif
#endif

namespace fastattn {

constexpr float kSqrtHalf = 0.70710678118654752f;      // 1 / sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143268f;    // 1 / sqrt(2 pi), the normal density at 0
constexpr float kSqrt2OverPi = 0.79788456080286536f;   // sqrt(2 / pi)
constexpr float kGeluTanhCubic = 0.044715f;

// exp and a divide for the GELU math. On the device the hardware's: __expf is ex2.approx of a
// scaled argument (2 instructions; relative error about 2^-21 plus 2 ulps per unit of |x|), where
// the accurate expf and expm1f took 10-25 instructions each, branches included: on an H100 the
// bias+GELU backward was compute-bound (its SASS ~64 instructions an element against ~50 us of
// memory time at 8192 x 3072; benchmarks/results/NOTES.md). The host (where tests/cpu checks these
// formulas with g++ against torch's float64 GELU) takes the accurate functions.
FASTATTN_HOST_DEVICE float fast_exp(float x) {
#if defined(__CUDA_ARCH__)
  return __expf(x);
#else
  return expf(x);
#endif
}

// a / b for b in [1, 2] (the tanh below): __fdividef is exact enough there and skips the
// IEEE divide's range handling.
FASTATTN_HOST_DEVICE float fast_divide(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdividef(a, b);
#else
  return a / b;
#endif
}

FASTATTN_HOST_DEVICE float gelu_erf(float z) { return 0.5f * z * (1.0f + erff(z * kSqrtHalf)); }

// Phi(z) + z * phi(z)
FASTATTN_HOST_DEVICE float gelu_erf_grad(float z) {
  return 0.5f * (1.0f + erff(z * kSqrtHalf)) + z * kInvSqrt2Pi * fast_exp(-0.5f * z * z);
}

// tanh(u) = sign(u) (1 - e) / (1 + e), e = exp(-2|u|) in (0, 1]: no overflow at any u, branch-free
// (as kernels/bias_gelu.py's _tanh_form). Near u = 0 the difference 1 - e loses relative accuracy,
// but not absolute: GELU's 1 + t and 1 - t^2 only need that. (CUDA's tanhf made ptxas spill a
// register in the float32 backward on sm_90a.)
FASTATTN_HOST_DEVICE float tanh_via_exp(float u) {
  const float e = fast_exp(-2.0f * fabsf(u));
  return copysignf(fast_divide(1.0f - e, 1.0f + e), u);
}

FASTATTN_HOST_DEVICE float gelu_tanh(float z) {
  const float t = tanh_via_exp(kSqrt2OverPi * (z + kGeluTanhCubic * z * z * z));
  return 0.5f * z * (1.0f + t);
}

FASTATTN_HOST_DEVICE float gelu_tanh_grad(float z) {
  const float t = tanh_via_exp(kSqrt2OverPi * (z + kGeluTanhCubic * z * z * z));
  const float du_dz = kSqrt2OverPi * (1.0f + 3.0f * kGeluTanhCubic * z * z);
  return 0.5f * (1.0f + t) + 0.5f * z * (1.0f - t * t) * du_dz;
}

template <bool kTanh>
FASTATTN_HOST_DEVICE float gelu(float z) { return kTanh ? gelu_tanh(z) : gelu_erf(z); }

template <bool kTanh>
FASTATTN_HOST_DEVICE float gelu_grad(float z) { return kTanh ? gelu_tanh_grad(z) : gelu_erf_grad(z); }

}  // namespace fastattn
