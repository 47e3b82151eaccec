"""The row-major to cuBLASLt mapping of the cuda FFN's GEMMs (csrc/ffn_gemm_plan.h), checked on the
host: a g++ driver plans each call as csrc/ffn_cublaslt.cpp does, then runs the plan through a
model of cuBLASLt's documented column-major semantics (op(A), op(B), leading dimensions; BIAS
broadcast over the columns of D, GELU aux laid out as D, DGELU_BGRAD summing over the columns of D,
BGRADB summing op(B) over k). The result must be the row-major math torch computes: a wrong op,
leading dimension or bias axis would otherwise show only on a GPU."""

import pytest
import torch
import torch.nn.functional as F

from gelu_cases import gelu_grad
from host_cxx import build_driver, run_driver

EPILOGUES = ["none", "bias", "gelu_bias", "gelu_aux_bias", "dgelu_bgrad", "bgradb"]

DRIVER = r"""
#include <cstdio>
#include <vector>

#include "ffn_gemm_plan.h"
#include "gelu_math.cuh"

using fastattn::FfnEpilogue;

std::vector<double> read_values(long count) {
  std::vector<double> values(count > 0 ? count : 1);
  for (long i = 0; i < count; ++i) std::scanf("%lf", &values[i]);
  return values;
}

fastattn::FfnMatrix read_matrix(long rows, long cols, std::vector<double>* storage) {
  long stride_row = 0, stride_col = 0, count = 0;
  std::scanf("%ld %ld %ld", &stride_row, &stride_col, &count);
  *storage = read_values(count);
  return {storage->data(), rows, cols, stride_row, stride_col};
}

// Reads: epilogue M N K, then a and w (strides, element count, elements), out's row stride, aux's
// row stride, element count and elements, the bias's element count and elements. Prints the
// plan's refusal, or out, bias and aux after the modelled cuBLASLt call.
int main() {
  int epilogue = 0;
  long M = 0, N = 0, K = 0, stride_out = 0, stride_aux = 0, aux_count = 0, bias_count = 0;
  std::scanf("%d %ld %ld %ld", &epilogue, &M, &N, &K);
  std::vector<double> a, w;
  fastattn::FfnGemmParams p{};
  p.a = read_matrix(M, K, &a);
  p.w = read_matrix(N, K, &w);
  std::scanf("%ld %ld %ld", &stride_out, &stride_aux, &aux_count);
  std::vector<double> aux = read_values(aux_count);
  std::scanf("%ld", &bias_count);
  std::vector<double> bias = read_values(bias_count);
  std::vector<double> out(M * stride_out > 0 ? M * stride_out : 1, 0.0);
  p.out = out.data();
  p.stride_out = stride_out;
  p.aux = aux_count ? aux.data() : nullptr;
  p.stride_aux = stride_aux;
  p.bias = bias_count ? bias.data() : nullptr;
  p.epilogue = static_cast<FfnEpilogue>(epilogue);

  const fastattn::LtPlan plan = fastattn::plan_ffn_gemm(p);
  if (plan.unsupported) {
    std::printf("UNSUPPORTED %s\n", plan.unsupported);
    return 0;
  }
  // The model: column-major A (m x k after op), B (k x n after op), D (m x n).
  auto op_a = [&](long i, long l) {
    return plan.a.transpose ? w[l + i * plan.a.ld] : w[i + l * plan.a.ld];
  };
  auto op_b = [&](long l, long j) {
    return plan.b.transpose ? a[j + l * plan.b.ld] : a[l + j * plan.b.ld];
  };
  const FfnEpilogue e = p.epilogue;
  if (e == FfnEpilogue::kDGeluBGrad) {
    for (long i = 0; i < plan.m; ++i) bias[i] = 0.0;
  }
  for (long j = 0; j < plan.n; ++j) {
    for (long i = 0; i < plan.m; ++i) {
      double acc = 0.0;
      for (long l = 0; l < plan.k; ++l) acc += op_a(i, l) * op_b(l, j);
      if (e == FfnEpilogue::kBias || e == FfnEpilogue::kGeluBias || e == FfnEpilogue::kGeluAuxBias) {
        acc += bias[i];
      }
      if (e == FfnEpilogue::kGeluAuxBias) aux[i + j * p.stride_aux] = acc;
      if (e == FfnEpilogue::kGeluBias || e == FfnEpilogue::kGeluAuxBias) {
        acc = fastattn::gelu<true>(static_cast<float>(acc));
      }
      if (e == FfnEpilogue::kDGeluBGrad) {
        acc *= fastattn::gelu_grad<true>(static_cast<float>(aux[i + j * p.stride_aux]));
        bias[i] += acc;
      }
      out[i + j * stride_out] = acc;
    }
  }
  if (e == FfnEpilogue::kBGradB) {
    for (long j = 0; j < plan.n; ++j) {
      bias[j] = 0.0;
      for (long l = 0; l < plan.k; ++l) bias[j] += op_b(l, j);
    }
  }
  const struct { const char* name; const std::vector<double>& values; long count; } outputs[] = {
      {"OUT", out, M * stride_out}, {"BIAS", bias, bias_count}, {"AUX", aux, aux_count}};
  for (const auto& output : outputs) {
    std::printf("%s", output.name);
    for (long i = 0; i < output.count; ++i) std::printf(" %.17g", output.values[i]);
    std::printf("\n");
  }
  return 0;
}
"""


@pytest.fixture(scope="module")
def plan_driver(tmp_path_factory):
    return build_driver(tmp_path_factory, "FFN GEMM plan", DRIVER)


def matrix(rows, cols, layout, generator):
    """[rows, cols] float64: "rows" row-major, "columns" a transposed view, "padded" row-major with
    a row stride past the end of the row, "expanded" a stride-0 row (an expanded gradient)."""
    if layout == "columns":
        return torch.randn(cols, rows, generator=generator, dtype=torch.float64).t()
    if layout == "padded":
        return torch.randn(rows, cols + 3, generator=generator, dtype=torch.float64)[:, :cols]
    if layout == "expanded":
        return torch.randn(1, cols, generator=generator, dtype=torch.float64).expand(rows, cols)
    return torch.randn(rows, cols, generator=generator, dtype=torch.float64)


def serialize(t):
    """strides, element count and the elements of t's storage span, as the driver reads them."""
    span = 1 + sum((size - 1) * stride for size, stride in zip(t.shape, t.stride()))
    flat = torch.as_strided(t, (span,), (1,), t.storage_offset()).tolist()
    return f"{t.stride(0)} {t.stride(1)} {span} " + " ".join(map(repr, flat))


def run(driver, epilogue, a, w, aux_stride=None, aux=None, bias_size=0, bias=None):
    M, K = a.shape
    N = w.shape[0]
    aux_values = [] if aux is None else aux.flatten().tolist()
    if aux is None and aux_stride is not None:
        aux_values = [0.0] * (M * aux_stride)
    bias_values = bias.tolist() if bias is not None else [0.0] * bias_size
    text = "\n".join([
        f"{EPILOGUES.index(epilogue)} {M} {N} {K}", serialize(a), serialize(w),
        f"{N} {aux_stride or 0} {len(aux_values)} " + " ".join(map(repr, aux_values)),
        f"{len(bias_values)} " + " ".join(map(repr, bias_values))]) + "\n"
    lines = run_driver(driver, text).splitlines()
    if lines[0].startswith("UNSUPPORTED"):
        return lines[0]
    values = {line.split()[0]: torch.tensor([float(v) for v in line.split()[1:]], dtype=torch.float64)
              for line in lines}
    return values["OUT"].reshape(M, N), values["BIAS"], values["AUX"]


LAYOUTS = [("rows", "rows"), ("rows", "columns"), ("columns", "columns"), ("columns", "rows"),
           ("padded", "rows"), ("rows", "padded")]


@pytest.mark.parametrize("a_layout,w_layout", LAYOUTS, ids=[f"a-{a}-w-{w}" for a, w in LAYOUTS])
@pytest.mark.parametrize("epilogue", EPILOGUES)
def test_plan_computes_the_row_major_math(plan_driver, epilogue, a_layout, w_layout):
    g = torch.Generator().manual_seed(EPILOGUES.index(epilogue))
    M, N, K = 5, 16, 7
    a, w = matrix(M, K, a_layout, g), matrix(N, K, w_layout, g)
    product = a @ w.t()
    bias_in = torch.randn(N, generator=g, dtype=torch.float64)
    tol = dict(rtol=1e-5, atol=1e-5)  # the driver's GELU is float32
    if epilogue == "none":
        out, _, _ = run(plan_driver, epilogue, a, w)
        torch.testing.assert_close(out, product, rtol=1e-12, atol=1e-12)
    elif epilogue == "bias":
        out, _, _ = run(plan_driver, epilogue, a, w, bias=bias_in)
        torch.testing.assert_close(out, product + bias_in, rtol=1e-12, atol=1e-12)
    elif epilogue in ("gelu_bias", "gelu_aux_bias"):
        aux_stride = N if epilogue == "gelu_aux_bias" else None
        out, _, aux = run(plan_driver, epilogue, a, w, aux_stride=aux_stride, bias=bias_in)
        torch.testing.assert_close(out, F.gelu(product + bias_in, approximate="tanh"), **tol)
        if aux_stride:
            torch.testing.assert_close(aux.reshape(M, N), product + bias_in, rtol=1e-12, atol=1e-12)
    elif epilogue == "dgelu_bgrad":
        pre = torch.randn(M, N, generator=g, dtype=torch.float64)
        out, db, _ = run(plan_driver, epilogue, a, w, aux_stride=N, aux=pre, bias_size=N)
        expected = product * gelu_grad(pre, "tanh")
        torch.testing.assert_close(out, expected, **tol)
        torch.testing.assert_close(db, expected.sum(0), **tol)
    else:  # bgradb: as the FFN calls it for dW2 = dY^T @ h, the bias is the row sums of a
        out, db, _ = run(plan_driver, epilogue, a, w, bias_size=M)
        torch.testing.assert_close(out, product, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(db, a.sum(1), rtol=1e-12, atol=1e-12)


def test_ffn_weight_gradient_call_gives_db2(plan_driver):
    """dW2 = dY^T @ h with BGRADB, called with the transposed views cuda_ffn passes."""
    g = torch.Generator().manual_seed(7)
    dy, h = matrix(6, 9, "rows", g), matrix(6, 16, "rows", g)
    out, db, _ = run(plan_driver, "bgradb", dy.t(), h.t(), bias_size=9)
    torch.testing.assert_close(out, dy.t() @ h, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(db, dy.sum(0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case,reason", [
    ("aux stride 37", "multiple of 8"),
    ("expanded a", "neither a unit row nor a unit column stride"),
    ("no rows", "empty dimension"),
])
def test_plan_refuses_what_cublaslt_does_not_take(plan_driver, case, reason):
    g = torch.Generator().manual_seed(3)
    if case == "aux stride 37":
        a, w = matrix(4, 8, "rows", g), matrix(37, 8, "rows", g)
        got = run(plan_driver, "gelu_aux_bias", a, w, aux_stride=37, bias_size=37)
    elif case == "expanded a":
        a, w = matrix(4, 8, "expanded", g), matrix(16, 8, "rows", g)
        got = run(plan_driver, "none", a, w)
    else:
        a, w = matrix(0, 8, "rows", g), matrix(16, 8, "rows", g)
        got = run(plan_driver, "none", a, w)
    assert isinstance(got, str) and reason in got, got
