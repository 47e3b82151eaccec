// The FFN GEMM contract (out = a @ w^T with an epilogue) and how one call maps onto cuBLASLt's
// column-major GEMM. Plain C++ with no CUDA or cuBLAS header, so that a host test
// (tests/cpu/test_ffn_gemm_plan_host.py) runs the mapping through a model of cuBLASLt's documented
// semantics where there is no GPU; csrc/ffn_cublaslt.cpp hands the plan to cuBLASLt.
//
// Row-major to column-major. A row-major [r, c] matrix with row stride s is, read column-major, a
// [c, r] matrix with leading dimension s: its transpose. So for out = a @ w^T we ask cuBLASLt for
// out^T = w @ a^T, which it writes column-major [N, M] with leading dimension stride_out, i.e. our
// row-major out:
//
//   cuBLASLt A := w,    op(A) = w    (m x k = N x K)
//   cuBLASLt B := a^T,  op(B) = a^T  (k x n = K x M)
//   cuBLASLt D := out^T              (m x n = N x M)
//
// Its epilogues' words in ours: "rows of D" are our output features (the BIAS and DGELU_BGRAD
// vectors are [N]; DGELU_BGRAD sums over its columns, our rows), "columns of D" are our rows, and
// BGRADB sums op(B) = a^T over k, giving bias[m] = sum_k a[m, k]. The aux matrix (the GELU input)
// is laid out as D, so its leading dimension is our row stride.
//
// An operand stored row-major (unit column stride) is the transpose of the matrix cuBLASLt reads;
// one stored column-major (a transposed view: unit row stride) is that matrix itself. Each picks its
// op (N or T) from that. Any other layout is left to the caller's other path.
#pragma once

#include <stdint.h>

namespace fastattn {

enum class FfnEpilogue : int {
  kNone = 0,     // out = a @ w^T
  kBias,         // out = a @ w^T + bias                        bias [N], input
  kGeluBias,     // out = gelu_tanh(a @ w^T + bias)              bias [N], input
  kGeluAuxBias,  // the same, and aux = a @ w^T + bias           bias [N] input, aux [M, N] output
  kDGeluBGrad,   // out = (a @ w^T) * gelu_tanh'(aux),           aux [M, N] input,
                 //       bias[n] = sum over rows of out[:, n]   bias [N] output
  kBGradB,       // out = a @ w^T, bias[m] = sum_k a[m, k]       bias [M] output
  kCount
};

inline bool ffn_epilogue_has_bias(FfnEpilogue e) { return e != FfnEpilogue::kNone; }
inline bool ffn_epilogue_has_aux(FfnEpilogue e) {
  return e == FfnEpilogue::kGeluAuxBias || e == FfnEpilogue::kDGeluBGrad;
}

// A row-major view: element (i, j) at ptr + (i * stride_row + j * stride_col) elements.
struct FfnMatrix {
  const void* ptr;
  int64_t rows, cols;
  int64_t stride_row, stride_col;
};

struct FfnGemmParams {
  FfnMatrix a;           // [M, K]
  FfnMatrix w;           // [N, K] (nn.Linear's weight layout; may be a transposed view)
  void* out;             // [M, N], row stride stride_out, unit column stride
  int64_t stride_out;
  void* bias;            // see FfnEpilogue; contiguous, out's element type
  void* aux;             // [M, N], row stride stride_aux (a multiple of 8), 16-byte aligned
  int64_t stride_aux;
  FfnEpilogue epilogue;
  bool allow_tf32;       // float32 only: torch.backends.cuda.matmul.allow_tf32
};

// One cuBLASLt operand: the stored column-major matrix and whether the GEMM reads its transpose.
struct LtOperand {
  bool transpose;
  int64_t rows, cols, ld;
};

struct LtPlan {
  const char* unsupported;  // why this call cannot go to cuBLASLt, or null
  int64_t m, n, k;          // cuBLASLt's: our N, M, K
  LtOperand a, b;           // cuBLASLt's A (our w) and B (our a, entering as a^T)
};

// How cuBLASLt reads x, given that the GEMM wants x itself or (want_transpose) x^T.
inline bool describe_operand(const FfnMatrix& x, bool want_transpose, LtOperand* out) {
  const bool row_major = x.stride_col == 1 && x.stride_row >= (x.cols > 1 ? x.cols : 1);
  const bool col_major = !row_major && x.stride_row == 1 && x.stride_col >= (x.rows > 1 ? x.rows : 1);
  if (!row_major && !col_major) return false;  // e.g. a stride 0 (an expanded gradient)
  // Stored row-major, cuBLASLt sees x^T: no op when x^T is wanted.
  out->transpose = row_major != want_transpose;
  out->rows = row_major ? x.cols : x.rows;
  out->cols = row_major ? x.rows : x.cols;
  out->ld = row_major ? x.stride_row : x.stride_col;
  return true;
}

inline LtPlan plan_ffn_gemm(const FfnGemmParams& p) {
  LtPlan plan{};
  plan.m = p.w.rows;
  plan.n = p.a.rows;
  plan.k = p.a.cols;
  if (plan.m == 0 || plan.n == 0 || plan.k == 0) {
    plan.unsupported = "an empty dimension (cuBLASLt needs M, N, K >= 1)";
  } else if (p.w.cols != plan.k || p.stride_out < plan.m) {
    plan.unsupported = "inconsistent shapes or out's row stride";
  } else if (ffn_epilogue_has_bias(p.epilogue) && p.bias == nullptr) {
    plan.unsupported = "the epilogue needs a bias vector";
  } else if (ffn_epilogue_has_aux(p.epilogue) &&
             (p.aux == nullptr || p.stride_aux % 8 != 0 || p.stride_aux < plan.m ||
              reinterpret_cast<uintptr_t>(p.aux) % 16 != 0)) {
    // cuBLASLt's rule for the GELU aux matrix (CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD/_POINTER).
    plan.unsupported = "the GELU aux matrix needs a row stride that is a multiple of 8 elements and "
                       "a 16-byte aligned start";
  } else if (!describe_operand(p.w, /*want_transpose=*/false, &plan.a) ||
             !describe_operand(p.a, /*want_transpose=*/true, &plan.b)) {
    plan.unsupported = "an operand has neither a unit row nor a unit column stride";
  }
  return plan;
}

}  // namespace fastattn
