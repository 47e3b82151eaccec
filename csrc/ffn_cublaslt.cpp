// cuBLASLt side of the FFN GEMMs (see ffn_cublaslt.h): hands the plan of ffn_gemm_plan.h (which
// also explains the row-major to column-major mapping) to cuBLASLt. Host code only; no torch.
// Whatever cuBLASLt does not accept is kUnsupported: the caller runs its other path.

#include "ffn_cublaslt.h"

#include <cublasLt.h>

#include <memory>
#include <mutex>
#include <unordered_map>

namespace fastattn {
namespace {

struct LtHandles {
  std::mutex mutex;
  std::unordered_map<int, cublasLtHandle_t> by_device;
};

// One handle per device for the life of the process: creating one costs far more than a GEMM
// call, and destroying them at exit would race CUDA's own teardown.
cublasStatus_t current_handle(cublasLtHandle_t* handle) {
  static LtHandles* handles = new LtHandles();  // never destroyed, see above
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return CUBLAS_STATUS_NOT_INITIALIZED;
  std::lock_guard<std::mutex> lock(handles->mutex);
  auto found = handles->by_device.find(device);
  if (found != handles->by_device.end()) {
    *handle = found->second;
    return CUBLAS_STATUS_SUCCESS;
  }
  const cublasStatus_t status = cublasLtCreate(handle);
  if (status == CUBLAS_STATUS_SUCCESS) handles->by_device.emplace(device, *handle);
  return status;
}

struct DescDeleter {
  void operator()(cublasLtMatmulDescOpaque_t* d) const { cublasLtMatmulDescDestroy(d); }
  void operator()(cublasLtMatrixLayoutOpaque_t* d) const { cublasLtMatrixLayoutDestroy(d); }
  void operator()(cublasLtMatmulPreferenceOpaque_t* d) const { cublasLtMatmulPreferenceDestroy(d); }
};
using MatmulDesc = std::unique_ptr<cublasLtMatmulDescOpaque_t, DescDeleter>;
using LayoutDesc = std::unique_ptr<cublasLtMatrixLayoutOpaque_t, DescDeleter>;
using PreferenceDesc = std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, DescDeleter>;

cudaDataType_t data_type(ElementType dtype) {
  switch (dtype) {
    case ElementType::kFloat16: return CUDA_R_16F;
    case ElementType::kBFloat16: return CUDA_R_16BF;
    case ElementType::kFloat32: break;
  }
  return CUDA_R_32F;
}

int64_t element_bytes(ElementType dtype) { return dtype == ElementType::kFloat32 ? 4 : 2; }

// The largest power of two (up to 256, cuBLASLt's default assumption) dividing the address and
// the leading dimension in bytes: algorithms needing more are excluded instead of misreading.
uint32_t alignment(const void* ptr, int64_t ld_bytes) {
  uint64_t bits = reinterpret_cast<uintptr_t>(ptr) | static_cast<uint64_t>(ld_bytes) | 256u;
  return static_cast<uint32_t>(bits & (~bits + 1));
}

cublasLtEpilogue_t lt_epilogue(FfnEpilogue e) {
  switch (e) {
    case FfnEpilogue::kBias: return CUBLASLT_EPILOGUE_BIAS;
    case FfnEpilogue::kGeluBias: return CUBLASLT_EPILOGUE_GELU_BIAS;
    case FfnEpilogue::kGeluAuxBias: return CUBLASLT_EPILOGUE_GELU_AUX_BIAS;
    case FfnEpilogue::kDGeluBGrad: return CUBLASLT_EPILOGUE_DGELU_BGRAD;
    case FfnEpilogue::kBGradB: return CUBLASLT_EPILOGUE_BGRADB;
    case FfnEpilogue::kNone:
    case FfnEpilogue::kCount: break;
  }
  return CUBLASLT_EPILOGUE_DEFAULT;
}

FfnGemmResult unsupported(const char* why) { return {FfnGemmStatus::kUnsupported, why}; }

template <typename T>
cublasStatus_t set(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attribute, const T& value) {
  return cublasLtMatmulDescSetAttribute(desc, attribute, &value, sizeof(value));
}

template <typename T>
cublasStatus_t set(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attribute,
                   const T& value) {
  return cublasLtMatmulPreferenceSetAttribute(pref, attribute, &value, sizeof(value));
}

}  // namespace

FfnGemmResult run_ffn_gemm(const FfnGemmParams& p, ElementType dtype, void* workspace,
                           size_t workspace_bytes, cudaStream_t stream) {
  const LtPlan plan = plan_ffn_gemm(p);
  if (plan.unsupported != nullptr) return unsupported(plan.unsupported);
  const cublasOperation_t op_a = plan.a.transpose ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = plan.b.transpose ? CUBLAS_OP_T : CUBLAS_OP_N;

  cublasLtHandle_t handle = nullptr;
  if (current_handle(&handle) != CUBLAS_STATUS_SUCCESS) return unsupported("cublasLtCreate failed");

  const cudaDataType_t type = data_type(dtype);
  const cublasComputeType_t compute = dtype == ElementType::kFloat32 && p.allow_tf32
      ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  cublasLtMatmulDesc_t raw_desc = nullptr;
  if (cublasLtMatmulDescCreate(&raw_desc, compute, CUDA_R_32F) != CUBLAS_STATUS_SUCCESS) {
    return unsupported("cublasLtMatmulDescCreate failed");
  }
  MatmulDesc desc(raw_desc);
  const cublasLtEpilogue_t epilogue = lt_epilogue(p.epilogue);
  bool ok = set(raw_desc, CUBLASLT_MATMUL_DESC_TRANSA, op_a) == CUBLAS_STATUS_SUCCESS &&
            set(raw_desc, CUBLASLT_MATMUL_DESC_TRANSB, op_b) == CUBLAS_STATUS_SUCCESS &&
            set(raw_desc, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue) == CUBLAS_STATUS_SUCCESS;
  if (ok && ffn_epilogue_has_bias(p.epilogue)) {
    ok = set(raw_desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, p.bias) == CUBLAS_STATUS_SUCCESS &&
         set(raw_desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, static_cast<int32_t>(type)) ==
             CUBLAS_STATUS_SUCCESS;
  }
  if (ok && ffn_epilogue_has_aux(p.epilogue)) {
    ok = set(raw_desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, p.aux) == CUBLAS_STATUS_SUCCESS &&
         set(raw_desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, p.stride_aux) == CUBLAS_STATUS_SUCCESS;
  }
  if (!ok) return unsupported("cuBLASLt rejected an attribute of the matmul descriptor");

  cublasLtMatrixLayout_t raw_a = nullptr, raw_b = nullptr, raw_d = nullptr;
  const cublasStatus_t layouts[3] = {
      cublasLtMatrixLayoutCreate(&raw_a, type, static_cast<uint64_t>(plan.a.rows),
                                 static_cast<uint64_t>(plan.a.cols), plan.a.ld),
      cublasLtMatrixLayoutCreate(&raw_b, type, static_cast<uint64_t>(plan.b.rows),
                                 static_cast<uint64_t>(plan.b.cols), plan.b.ld),
      cublasLtMatrixLayoutCreate(&raw_d, type, static_cast<uint64_t>(plan.m),
                                 static_cast<uint64_t>(plan.n), p.stride_out)};
  LayoutDesc a_desc(raw_a), b_desc(raw_b), d_desc(raw_d);
  for (cublasStatus_t status : layouts) {
    if (status != CUBLAS_STATUS_SUCCESS) return unsupported("cuBLASLt rejected a matrix layout");
  }

  cublasLtMatmulPreference_t raw_pref = nullptr;
  if (cublasLtMatmulPreferenceCreate(&raw_pref) != CUBLAS_STATUS_SUCCESS) {
    return unsupported("cublasLtMatmulPreferenceCreate failed");
  }
  PreferenceDesc pref(raw_pref);
  const int64_t bytes = element_bytes(dtype);
  ok = set(raw_pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, static_cast<uint64_t>(workspace_bytes)) ==
           CUBLAS_STATUS_SUCCESS &&
       set(raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, alignment(p.w.ptr, plan.a.ld * bytes)) ==
           CUBLAS_STATUS_SUCCESS &&
       set(raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, alignment(p.a.ptr, plan.b.ld * bytes)) ==
           CUBLAS_STATUS_SUCCESS &&
       set(raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, alignment(p.out, p.stride_out * bytes)) ==
           CUBLAS_STATUS_SUCCESS &&
       set(raw_pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, alignment(p.out, p.stride_out * bytes)) ==
           CUBLAS_STATUS_SUCCESS;
  if (!ok) return unsupported("cuBLASLt rejected a matmul preference");

  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  // beta = 0: C is never read, but cuBLASLt still wants its layout (D's) and pointer.
  if (cublasLtMatmulAlgoGetHeuristic(handle, raw_desc, raw_a, raw_b, raw_d, raw_d, raw_pref, 1,
                                     &heuristic, &found) != CUBLAS_STATUS_SUCCESS || found == 0) {
    return unsupported("cuBLASLt has no algorithm for this epilogue, type, layout and alignment");
  }
  const float alpha = 1.0f, beta = 0.0f;
  const cublasStatus_t status = cublasLtMatmul(handle, raw_desc, &alpha, p.w.ptr, raw_a, p.a.ptr, raw_b,
                                               &beta, p.out, raw_d, p.out, raw_d, &heuristic.algo,
                                               workspace, workspace_bytes, stream);
  if (status == CUBLAS_STATUS_NOT_SUPPORTED || status == CUBLAS_STATUS_INVALID_VALUE) {
    return unsupported("cublasLtMatmul declined the algorithm its heuristic chose");
  }
  if (status != CUBLAS_STATUS_SUCCESS) return {FfnGemmStatus::kFailed, cublasLtGetStatusString(status)};
  return {FfnGemmStatus::kDone, nullptr};
}

size_t ffn_gemm_workspace_bytes() {
  int device = 0, major = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
    return size_t{4} << 20;
  }
  return (major >= 9 ? size_t{32} : size_t{4}) << 20;
}

size_t ffn_cublaslt_version() { return cublasLtGetVersion(); }

}  // namespace fastattn
