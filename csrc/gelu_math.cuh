// GELU and its derivative in float32, shared by the CUDA kernels and callable on the host, so
// tests/cpu checks them with g++ against torch's float64 GELU (as philox.cuh is checked).
//   erf ("none", BERT):       gelu(z) = z * Phi(z) = 0.5 z (1 + erf(z / sqrt 2))
//   tanh (GPT2's gelu_new):   gelu(z) = 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))
// The erf form comes twice: with erff (float32 outputs) and with a cheaper erfc (16-bit outputs).
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

constexpr float kLog2e = 1.44269504088896341f;

// exp, a reciprocal and a divide for the GELU math. On the device each is one MUFU instruction
// (ex2.approx.ftz, rcp.approx.ftz: relative error about 2^-22; here 2^x for x <= 0 and 1/x for
// x >= 1), where the accurate expf and expm1f took 10-25 instructions each, branches included: on
// an H100 the bias+GELU backward was compute-bound (its SASS ~64 instructions an element against
// ~50 us of memory time at 8192 x 3072; benchmarks/results/NOTES.md). __expf and __fdividef cost
// 3-4 instructions more than the MUFU alone: they rescale arguments and results around float32's
// denormal range, which GELU never needs (a result below 2^-126 only ever multiplies a finite z or
// is added to 1, so flushing it to zero changes nothing that float32 keeps). The host (where
// tests/cpu checks these formulas with g++ against torch's float64 GELU) takes the accurate
// functions.
#if defined(__CUDA_ARCH__)
__device__ __forceinline__ float ex2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
#endif

FASTATTN_HOST_DEVICE float fast_exp(float x) {
#if defined(__CUDA_ARCH__)
  return ex2_approx(x * kLog2e);
#else
  return expf(x);
#endif
}

// exp(-z^2 / 2), the normal density's shape: two multiplies and the MUFU on the device (fast_exp
// of -0.5 z z would multiply three times: the compiler may not reassociate float products).
FASTATTN_HOST_DEVICE float gauss(float z) {
#if defined(__CUDA_ARCH__)
  return ex2_approx(z * (z * (-0.5f * kLog2e)));
#else
  return expf(-0.5f * z * z);
#endif
}

// 1 / x for x >= 1.
FASTATTN_HOST_DEVICE float fast_reciprocal(float x) {
#if defined(__CUDA_ARCH__)
  float y;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#else
  return 1.0f / x;
#endif
}

// a / b for b in [1, 2] (the tanh below).
FASTATTN_HOST_DEVICE float fast_divide(float a, float b) { return a * fast_reciprocal(b); }

FASTATTN_HOST_DEVICE float gelu_erf(float z) { return 0.5f * z * (1.0f + erff(z * kSqrtHalf)); }

// Phi(z) + z * phi(z)
FASTATTN_HOST_DEVICE float gelu_erf_grad(float z) {
  return 0.5f * (1.0f + erff(z * kSqrtHalf)) + z * kInvSqrt2Pi * gauss(z);
}

// The erf GELU for 16-bit outputs, where erff's accuracy (about 1 ulp of float32) is far below what
// the output keeps (float16 rounds at 2^-11 relative, bfloat16 at 2^-8). erff costs about 25
// instructions (both of its polynomial ranges, then a select): it made the bias+GELU kernels
// compute-bound on an H100 (2026-11-26: backward 64% of the copy bandwidth at 8192 x 3072). Here
// erfc(a) = t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-a^2), t = 1 / (1 + p a), a >= 0
// (Abramowitz and Stegun 7.1.26: |error| <= 1.5e-7 on erf), so Phi(z) = erfc(|z| / sqrt 2) / 2
// for z < 0 and 1 minus that otherwise (no cancellation in the negative tail). Its exp(-z^2 / 2)
// is the normal density's too: the derivative takes one exponential, not two. With float32
// arithmetic Phi is within 3e-7 of the exact value (tests/cpu/test_cuda_gelu_math_host.py).
constexpr float kErfcP = 0.3275911f;
constexpr float kErfcA1 = 0.254829592f;
constexpr float kErfcA2 = -0.284496736f;
constexpr float kErfcA3 = 1.421413741f;
constexpr float kErfcA4 = -1.453152027f;
constexpr float kErfcA5 = 1.061405429f;

// Phi(z), given g = gauss(z) = exp(-z^2 / 2).
FASTATTN_HOST_DEVICE float normal_cdf_from_gauss(float z, float g) {
  const float t = fast_reciprocal(fmaf(kErfcP * kSqrtHalf, fabsf(z), 1.0f));
  const float poly = t * fmaf(t, fmaf(t, fmaf(t, fmaf(t, kErfcA5, kErfcA4), kErfcA3), kErfcA2),
                              kErfcA1);
  const float lower_tail = 0.5f * poly * g;  // Phi(-|z|)
  return z < 0.0f ? lower_tail : 1.0f - lower_tail;
}

FASTATTN_HOST_DEVICE float gelu_erf_fast(float z) {
  return z * normal_cdf_from_gauss(z, gauss(z));
}

FASTATTN_HOST_DEVICE float gelu_erf_grad_fast(float z) {
  const float g = gauss(z);
  return normal_cdf_from_gauss(z, g) + z * kInvSqrt2Pi * g;
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

// kExactErf: erff for float32 outputs (the accuracy path); the fast erf form for 16-bit ones.
template <bool kTanh, bool kExactErf = true>
FASTATTN_HOST_DEVICE float gelu(float z) {
  return kTanh ? gelu_tanh(z) : kExactErf ? gelu_erf(z) : gelu_erf_fast(z);
}

template <bool kTanh, bool kExactErf = true>
FASTATTN_HOST_DEVICE float gelu_grad(float z) {
  return kTanh ? gelu_tanh_grad(z) : kExactErf ? gelu_erf_grad(z) : gelu_erf_grad_fast(z);
}

}  // namespace fastattn
