"""The cuda FFN's cuBLASLt path (csrc/ffn_cublaslt.cpp): each epilogue called directly against the
math it stands for, the tanh form's training step really taking GELU_AUX_BIAS and DGELU_BGRAD (the
extension's per-epilogue counters), and the hidden sizes an epilogue cannot take (37, 1023: the
aux matrix's row stride must be a multiple of 8) falling back with the right answer on every
backend. The whole ffn suite (tests/gpu/test_ffn_gpu_suite.py) runs the path too."""

import pytest
import torch
import torch.nn.functional as F

import fastattn
import ffn_cases
from gelu_cases import gelu_grad
from fastattn import _extension
from numerics import assert_numerics

FUSED_DTYPES = [torch.float16, torch.bfloat16]


def cublaslt_module():
    module, error = _extension.load()
    if module is None:
        pytest.skip(f"fastattn._C is not available: {error}")
    if getattr(module, "ffn_gemm_path", "aten") != "cublaslt":
        pytest.skip("fastattn._C was built without cuBLASLt (setup.py found no cublasLt.h): "
                    "the FFN's GEMMs go through ATen")
    return module


def counts_since(module, before):
    after = module.ffn_gemm_counts()
    return {name: (after[name][0] - before[name][0], after[name][1] - before[name][1]) for name in after}


def epilogue_math(epilogue, a, w, bias, pre):
    """(out, bias output or None, aux output or None) of one epilogue, in a's dtype (torch)."""
    product = a @ w.t()
    if epilogue == "bias":
        return product + bias, None, None
    if epilogue == "gelu_bias":
        return F.gelu(product + bias, approximate="tanh"), None, None
    if epilogue == "gelu_aux_bias":
        return F.gelu(product + bias, approximate="tanh"), None, product + bias
    if epilogue == "dgelu_bgrad":
        da = product * gelu_grad(pre, "tanh")
        return da, da.sum(0), None
    return product, a.sum(1), None  # bgradb


GELU_EPILOGUES = ("gelu_bias", "gelu_aux_bias", "dgelu_bgrad")


@pytest.mark.parametrize("epilogue", ["bias", *GELU_EPILOGUES, "bgradb"])
def test_each_epilogue_runs_and_matches_its_math(dtype, epilogue):
    """16-bit calls must take cuBLASLt; float32 ones may be declined (then with a reason), as
    cuBLASLt does not promise every epilogue for float32. Operands are laid out as the cuda FFN
    passes them (bgradb: the transposed views of dY and h), since cuBLASLt offers some epilogues
    for some layouts only."""
    if dtype == torch.float32 and epilogue in GELU_EPILOGUES:
        pytest.skip("fastattn never asks for cuBLASLt's GELU epilogues in float32 (cuda_ffn.py: "
                    "less exact than float32 needs; test_float32_never_asks_for_gelu_epilogues)")
    if dtype == torch.float16 and epilogue == "bgradb":
        pytest.skip("fastattn asks for BGRADB in bfloat16 only (cuda_ffn.py: its float16 bias "
                    "gradient was 3.4x eager's error on an H100; "
                    "test_training_step_takes_the_fused_epilogues)")
    module = cublaslt_module()
    g = torch.Generator().manual_seed(11)
    rows, width, features = 48, 64, 96
    if epilogue == "bgradb":  # a = dY^T, w = h^T of _down_weight_grads: column-major views
        a = torch.randn(width, rows, generator=g).cuda().to(dtype).t()
        w = (torch.randn(width, features, generator=g) * width ** -0.5).cuda().to(dtype).t()
    else:
        a = torch.randn(rows, width, generator=g).cuda().to(dtype)
        w = (torch.randn(features, width, generator=g) * width ** -0.5).cuda().to(dtype)
    bias_in = (0.5 * torch.randn(features, generator=g)).cuda().to(dtype)
    pre = torch.randn(rows, features, generator=g).cuda().to(dtype)
    out = torch.full((rows, features), float("nan"), device="cuda", dtype=dtype)
    bias_size = rows if epilogue == "bgradb" else features
    bias = (torch.full((bias_size,), float("nan"), device="cuda", dtype=dtype)
            if epilogue in ("dgelu_bgrad", "bgradb") else bias_in)
    aux = {"gelu_aux_bias": torch.full_like(out, float("nan")), "dgelu_bgrad": pre}.get(epilogue)
    declined = module.ffn_gemm(a, w, out, epilogue, bias, aux, False)
    if declined is not None:
        assert dtype == torch.float32, f"cuBLASLt declined {epilogue} in {dtype}: {declined}"
        pytest.skip(f"cuBLASLt declined {epilogue} in float32: {declined}")
    ref = epilogue_math(epilogue, a.double(), w.double(), bias_in.double(), pre.double())
    eager = epilogue_math(epilogue, a, w, bias_in, pre)
    assert_numerics(f"{epilogue} out", out, ref[0], eager[0])
    if ref[1] is not None:
        assert_numerics(f"{epilogue} bias gradient", bias, ref[1], eager[1], factor=3.0)
    if ref[2] is not None:
        assert_numerics(f"{epilogue} aux", aux, ref[2], eager[2])


def _training_step_counts(module, dtype, approximate):
    before = module.ffn_gemm_counts()
    ffn_cases.check_case("cuda", torch.device("cuda"), dtype, (4, 12, 64), 128, 48, approximate)
    return counts_since(module, before)


@pytest.mark.parametrize("approximate", ffn_cases.APPROXIMATIONS)
def test_training_step_takes_the_fused_epilogues(dtype, approximate):
    """16-bit tanh: GELU_AUX_BIAS up, BIAS down, DGELU_BGRAD backward; erf and float32: BIAS both
    ways (then our GELU kernels); bfloat16 BGRADB, the others a plain GEMM for dW2. Every GEMM of
    the step is a cuBLASLt call."""
    module = cublaslt_module()
    counts = _training_step_counts(module, dtype, approximate)
    # "none": dX and dW1 (and, without the GELU epilogues, dH before our GELU backward kernel).
    gelu_epilogues = approximate == "tanh" and dtype != torch.float32
    expected = {"gelu_aux_bias": 1, "bias": 1, "dgelu_bgrad": 1, "none": 2} if gelu_epilogues \
        else {"bias": 2, "none": 3}
    if dtype == torch.bfloat16:
        expected["bgradb"] = 1
    else:  # dW2 as a plain GEMM, db2 as dY's column sums
        expected["none"] += 1
        assert counts["bgradb"] == (0, 0), counts
    for name, ran in expected.items():
        assert counts[name][0] >= ran, f"{name}: {counts[name]} (ran, declined), expected {ran} runs"
    if dtype != torch.float32:
        assert all(declined == 0 for _, declined in counts.values()), counts


def test_float32_never_asks_for_gelu_epilogues():
    module = cublaslt_module()
    counts = _training_step_counts(module, torch.float32, "tanh")
    assert all(counts[name] == (0, 0) for name in GELU_EPILOGUES), counts


def test_inference_tanh_takes_gelu_bias(dtype):
    module = cublaslt_module()
    before = module.ffn_gemm_counts()
    ffn_cases.check_inference_matches_training("cuda", torch.device("cuda"), dtype, "tanh")
    gelu_bias_runs = counts_since(module, before)["gelu_bias"][0]
    if dtype == torch.float32:  # our GELU kernel after a BIAS GEMM instead (see above)
        assert gelu_bias_runs == 0
    else:
        assert gelu_bias_runs >= 1


@pytest.mark.parametrize("hidden", [37, 1023])
@pytest.mark.parametrize("approximate", ffn_cases.APPROXIMATIONS)
def test_hidden_not_a_multiple_of_8(backend, device, dtype, hidden, approximate):
    ffn_cases.check_case(backend, device, dtype, (3, 5, 40), hidden, 24, approximate)


def test_odd_hidden_declines_the_aux_epilogue_and_falls_back():
    module = cublaslt_module()
    before = module.ffn_gemm_counts()
    ffn_cases.check_case("cuda", torch.device("cuda"), torch.float16, (3, 5, 40), 37, 24, "tanh")
    counts = counts_since(module, before)
    assert counts["gelu_aux_bias"] == (0, 1) and counts["dgelu_bgrad"] == (0, 1), counts


def test_float32_is_full_precision_while_tf32_is_off():
    """float32 GEMMs run in full float32 unless torch's TF32 switch is on (DESIGN section 2): a
    TF32 GEMM at K = 256..512 would miss the reference by ~1e-3."""
    cublaslt_module()
    inputs = [t.cuda() for t in ffn_cases.make_inputs((64, 256), 512, 256, torch.float32, "cpu", seed=9)]
    ref = fastattn.reference.ffn(*(t.double() for t in inputs), "tanh")
    previous = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        out = fastattn.ffn(*inputs, approximate="tanh", backend="cuda")
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous
    assert (out.double() - ref).abs().max().item() < 1e-4
