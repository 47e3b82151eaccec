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

FASTATTN_HOST_DEVICE float gelu_erf(float z) { return 0.5f * z * (1.0f + erff(z * kSqrtHalf)); }

// Phi(z) + z * phi(z)
FASTATTN_HOST_DEVICE float gelu_erf_grad(float z) {
  return 0.5f * (1.0f + erff(z * kSqrtHalf)) + z * kInvSqrt2Pi * expf(-0.5f * z * z);
}

// tanh(u) from expm1 of -2|u|: accurate near 0, never overflows. (CUDA's tanhf made ptxas spill a
// register in the float32 backward on sm_90a.)
FASTATTN_HOST_DEVICE float tanh_via_expm1(float u) {
  const float em = expm1f(-2.0f * fabsf(u));
  return copysignf(-em / (2.0f + em), u);
}

FASTATTN_HOST_DEVICE float gelu_tanh(float z) {
  const float t = tanh_via_expm1(kSqrt2OverPi * (z + kGeluTanhCubic * z * z * z));
  return 0.5f * z * (1.0f + t);
}

FASTATTN_HOST_DEVICE float gelu_tanh_grad(float z) {
  const float t = tanh_via_expm1(kSqrt2OverPi * (z + kGeluTanhCubic * z * z * z));
  const float du_dz = kSqrt2OverPi * (1.0f + 3.0f * kGeluTanhCubic * z * z);
  return 0.5f * (1.0f + t) + 0.5f * z * (1.0f - t * t) * du_dz;
}

template <bool kTanh>
FASTATTN_HOST_DEVICE float gelu(float z) { return kTanh ? gelu_tanh(z) : gelu_erf(z); }

template <bool kTanh>
FASTATTN_HOST_DEVICE float gelu_grad(float z) { return kTanh ? gelu_tanh_grad(z) : gelu_erf_grad(z); }

}  // namespace fastattn
