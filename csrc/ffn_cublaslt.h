// The FFN's GEMMs through cuBLASLt with its fused epilogues (csrc/ffn_cublaslt.cpp), behind a
// raw-pointer interface so that only bindings.cpp sees torch and only ffn_cublaslt.cpp sees
// cublasLt.h (the extension builds without that file where the header is missing). The contract
// of a call, FfnGemmParams, and its mapping onto cuBLASLt are in ffn_gemm_plan.h.
#pragma once

#include <cuda_runtime.h>
#include <stddef.h>

#include "element_type.h"
#include "ffn_gemm_plan.h"

namespace fastattn {

enum class FfnGemmStatus { kDone, kUnsupported, kFailed };

// kUnsupported: this call misses a requirement of cuBLASLt or of the epilogue (layout, alignment,
// empty dimension, no algorithm); nothing was written and the caller takes another path.
// kFailed: cuBLASLt failed after accepting the call. detail says why (a static string).
struct FfnGemmResult {
  FfnGemmStatus status;
  const char* detail;
};

// Runs on `stream` with the current device's cuBLASLt handle (created once per device, kept for
// the process). workspace may be null when workspace_bytes is 0.
FfnGemmResult run_ffn_gemm(const FfnGemmParams& params, ElementType dtype, void* workspace,
                           size_t workspace_bytes, cudaStream_t stream);

// Workspace for the current device: 32 MiB on sm_90 and newer, 4 MiB before (what NVIDIA's
// Transformer Engine gives cuBLASLt; its Hopper kernels want the larger one).
size_t ffn_gemm_workspace_bytes();

// cuBLASLt's runtime version (cublasLtGetVersion), e.g. 130101 for 13.1.1.
size_t ffn_cublaslt_version();

}  // namespace fastattn
