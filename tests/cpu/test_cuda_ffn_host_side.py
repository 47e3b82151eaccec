"""The cuda FFN's host side (fastattn/backends/cuda_ffn.py) where no GPU is: fastattn._C is replaced
by a CPU model of its FFN contract (ffn_gemm's epilogues as csrc/ffn_gemm_plan.h states them,
ffn_linear, the bias+GELU kernels), so that the choice of epilogue for each GEMM, the operands and
bias vectors handed to it, and every fallback when an epilogue is declined are checked against
fastattn.reference in float64. Output buffers start as NaN (FASTATTN_POISON_OUTPUTS), so an output
the host side forgets to have written shows."""

import pytest
import torch
import torch.nn.functional as F

import ffn_cases
from fastattn import _extension, reference
from fastattn.backends import cuda_ffn
from gelu_cases import gelu_grad

EPILOGUES = ("none", "bias", "gelu_bias", "gelu_aux_bias", "dgelu_bgrad", "bgradb")


class FakeExtension:
    """fastattn._C's FFN entry points in CPU torch math; declines the epilogues in `declined` (as
    the real one does for calls cuBLASLt cannot take, or all of them when built without it)."""

    def __init__(self, declined=()):
        self.declined = set(declined)
        self.calls = []

    def ffn_gemm(self, a, weight, out, epilogue, bias, aux, allow_tf32):
        assert epilogue in EPILOGUES and isinstance(allow_tf32, bool)
        assert (bias is None) == (epilogue == "none"), epilogue
        assert (aux is not None) == (epilogue in ("gelu_aux_bias", "dgelu_bgrad")), epilogue
        if bias is not None:
            assert bias.shape == ((a.shape[0],) if epilogue == "bgradb" else (weight.shape[0],))
        if aux is not None:
            assert aux.shape == out.shape and aux.is_contiguous()
        self.calls.append(epilogue)
        if epilogue in self.declined:
            return "declined by the test"
        product = a @ weight.t()
        if epilogue == "bias":
            out.copy_(product + bias)
        elif epilogue in ("gelu_bias", "gelu_aux_bias"):
            if aux is not None:
                aux.copy_(product + bias)
            out.copy_(F.gelu(product + bias, approximate="tanh"))
        elif epilogue == "dgelu_bgrad":
            out.copy_(product * gelu_grad(aux, "tanh"))
            bias.copy_(out.sum(0))
        else:
            out.copy_(product)
            if epilogue == "bgradb":
                bias.copy_(a.sum(1))
        return None

    def ffn_linear(self, a, weight, bias, out, gelu_tanh):
        self.calls.append("aten")
        result = a @ weight.t() + (0 if bias is None else bias)
        out.copy_(F.gelu(result, approximate="tanh") if gelu_tanh else result)

    def bias_gelu_fwd(self, x, bias, out, tanh_approximation):
        out.copy_(F.gelu(x + bias, approximate="tanh" if tanh_approximation else "none"))

    def bias_gelu_bwd(self, grad_out, x, bias, grad_in, partial, tanh_approximation):
        grad_in.copy_(grad_out * gelu_grad(x + bias, "tanh" if tanh_approximation else "none"))
        partial.zero_()
        partial[0] = grad_in.sum(0)


def run(monkeypatch, approximate, declined=(), store_pre=True, dtype=torch.float64,
        layout="contiguous"):
    """(fake extension, outputs and gradients of the cuda backend, the same from the reference).
    layout "transposed": the weights are transposed views, as GPT-2's Conv1D weights."""
    fake = FakeExtension(declined)
    monkeypatch.setattr(_extension, "require", lambda: fake)
    # float64 stands in for bfloat16, which takes BGRADB (test_bgradb_is_bfloat16_only) and
    # DGELU_BGRAD
    monkeypatch.setattr(cuda_ffn, "BGRADB_DTYPES", (torch.bfloat16, torch.float64))
    monkeypatch.setattr(cuda_ffn, "DGELU_BGRAD_DTYPES", (torch.bfloat16, torch.float64))
    x, w1, b1, w2, b2 = ffn_cases.make_inputs((6, 24), 40, 16, dtype, "cpu", seed=2, layout=layout)
    x = x.contiguous()  # the op front hands the backends rows with a contiguous last dimension
    dy = torch.randn(6, 16, generator=torch.Generator().manual_seed(1), dtype=dtype)
    out, h, pre = cuda_ffn.ffn_fwd(x, w1, b1, w2, b2, approximate, 0.0, None, store_pre)
    grads = cuda_ffn.ffn_bwd(dy, x, w1, w2, h, pre, approximate, 0.0, None) if store_pre else ()
    leaves = [t.clone().requires_grad_() for t in (x, w1, b1, w2, b2)]
    ref = reference.ffn(*leaves, approximate)
    return fake, (out, *grads), (ref, *torch.autograd.grad(ref, leaves, dy))


@pytest.mark.parametrize("declined", [(), ("gelu_aux_bias", "dgelu_bgrad"), ("bgradb",), EPILOGUES],
                         ids=["all-fused", "no-aux", "no-bgradb", "built-without-cublaslt"])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_outputs_and_gradients_on_every_path(monkeypatch, approximate, declined):
    _, got, expected = run(monkeypatch, approximate, declined)
    # 1e-6: the unfused bias gradients are summed in float32 (as on the GPU), the rest is float64;
    # a wrong operand, epilogue or bias axis is off by O(1).
    for name, g, e in zip(("y", "dx", "dw1", "db1", "dw2", "db2"), got, expected):
        torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-6, msg=name)


@pytest.mark.parametrize("approximate,store_pre,calls", [
    ("tanh", True, ["gelu_aux_bias", "bias", "dgelu_bgrad", "bgradb", "none", "none"]),
    ("none", True, ["bias", "bias", "none", "bgradb", "none", "none"]),
    ("tanh", False, ["gelu_bias", "bias"]),
    ("none", False, ["bias", "bias"]),
])
def test_each_gemm_takes_its_epilogue(monkeypatch, approximate, store_pre, calls):
    fake, _, _ = run(monkeypatch, approximate, store_pre=store_pre)
    assert fake.calls == calls


@pytest.mark.parametrize("approximate,calls", [
    ("tanh", ["gelu_aux_bias", "bias", "dgelu_bgrad", "none", "none", "none"]),
    ("none", ["bias", "bias", "none", "none", "none", "none"]),
])
def test_transposed_weights_get_gradients_in_their_layout(monkeypatch, approximate, calls):
    """GPT-2's weights (transposed views): dW1 and dW2 come column-major, as the weights are
    stored, and dW2 leaves BGRADB (its bias would sum h, not dY) for a plain GEMM."""
    fake, got, expected = run(monkeypatch, approximate, layout="transposed")
    assert fake.calls == calls
    weights = dict(zip(("dw1", "dw2"), ffn_cases.make_inputs(
        (6, 24), 40, 16, torch.float64, "cpu", seed=2, layout="transposed")[1::2]))
    for name, g, e in zip(("y", "dx", "dw1", "db1", "dw2", "db2"), got, expected):
        torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-6, msg=name)
        if name in weights:
            ffn_cases.assert_laid_out_as(name, g, weights[name])


def test_a_declined_epilogue_falls_back_to_aten(monkeypatch):
    fake, _, _ = run(monkeypatch, "tanh", declined=EPILOGUES)
    assert fake.calls == ["gelu_aux_bias", "bias", "aten", "bias", "aten",  # forward
                          "dgelu_bgrad", "none", "aten", "bgradb", "none", "aten",
                          "none", "aten", "none", "aten"]


def test_float32_takes_our_gelu_not_cublaslts(monkeypatch):
    """cuBLASLt's GELU epilogues left float32 dW2, dW1 and dX 10-40x further from the reference than
    eager (H200 gpu tier, 2026-11-26): float32 runs the plain GEMMs and our bias_gelu kernels."""
    fake, _, _ = run(monkeypatch, "tanh", dtype=torch.float32)
    assert fake.calls == ["bias", "bias", "none", "none", "none", "none"]


@pytest.mark.parametrize("grad_dtype,calls", [(torch.bfloat16, ["bgradb"]),
                                              (torch.float16, ["none"]), (torch.float32, ["none"])])
def test_bgradb_is_bfloat16_only(monkeypatch, grad_dtype, calls):
    """cuBLASLt's BGRADB bias gradient in float16 was 3.4x eager's error (H100 gpu tier,
    2026-11-26): float16 and float32 take a plain GEMM for dW2 and dY's column sums for db2."""
    fake = FakeExtension(())
    monkeypatch.setattr(_extension, "require", lambda: fake)
    g = torch.Generator().manual_seed(3)
    dy, h, w2 = (torch.randn(*shape, generator=g).to(grad_dtype)
                 for shape in ((6, 16), (6, 40), (16, 40)))
    dw2, db2 = cuda_ffn._down_weight_grads(dy, h, w2)
    assert fake.calls == calls
    torch.testing.assert_close(db2.float(), dy.float().sum(0), rtol=1e-2, atol=1e-2)


def test_the_kept_zero_bias_stays_zero_and_is_reused(monkeypatch):
    """The erf form adds the bias in the GEMM and hands our GELU kernels a zero bias, kept between
    calls: it must come back unwritten, and be the same tensor next time."""
    cuda_ffn._ZERO_BIASES.clear()
    run(monkeypatch, "none")
    kept = dict(cuda_ffn._ZERO_BIASES)
    assert kept and all(not zeros.any() for zeros in kept.values())
    run(monkeypatch, "none")
    assert all(cuda_ffn._ZERO_BIASES[key] is zeros for key, zeros in kept.items())
