"""Bias + GELU at real FFN sizes, misaligned views, the backends against each other."""

import pytest
import torch

import fastattn
import gelu_cases
from numerics import max_abs_diff

# BERT-base / GPT2 FFN widths at training batch sizes; widths that defeat 16-byte vectors.
REAL_SHAPES = [(8192, 3072), (16384, 4096), (4096, 1023), (3000, 37)]


@pytest.mark.parametrize("shape", REAL_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("approximate", gelu_cases.APPROXIMATIONS)
def test_real_sizes(backend, device, dtype, shape, approximate):
    gelu_cases.check_case(backend, device, dtype, shape, approximate)


def test_misaligned_x_takes_the_scalar_path(backend, device, dtype):
    x, bias = gelu_cases.make_inputs((64, 257), dtype, device)
    x = x[:, 1:]
    assert x.data_ptr() % 16 != 0
    gelu_cases.check_against_reference(backend, x, bias[1:].contiguous(), "none")


@pytest.mark.parametrize("approximate", gelu_cases.APPROXIMATIONS)
def test_fused_backends_agree(device, dtype, approximate):
    status = fastattn.available_backends()
    missing = [name for name in ("triton", "cuda") if not status[name]["available"]]
    if missing:
        pytest.skip(f"needs both fused backends, missing {missing}: {status[missing[0]]['detail']}")
    x, bias = gelu_cases.make_inputs((1000, 768), dtype, device, seed=5)
    dy = torch.randn_like(x)
    results = {}
    for name in ("triton", "cuda", "torch"):
        leaves = [t.detach().requires_grad_() for t in (x, bias)]
        out = fastattn.bias_gelu(*leaves, approximate=approximate, backend=name)
        results[name] = (out, *torch.autograd.grad(out, leaves, dy))
    # Relative above 1: two correct kernels may round one element apart, and one 16-bit ulp at
    # |y| ~ 4 (2^-8 in float16, 2^-5 in bfloat16; seen on an H100, tanh form) exceeds any absolute
    # tolerance that would still catch a wrong formula near 0.
    tolerance = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}[dtype]
    for name in ("cuda", "torch"):
        for label, got, expected in zip(("y", "dx", "dbias"), results[name], results["triton"]):
            if label == "dbias":  # a sum over rows: its rounding scales with the largest sum
                allowed = tolerance * max(1.0, expected.abs().max().item())
            else:
                allowed = tolerance * expected.detach().double().abs().clamp(min=1.0)
            excess = (got.detach().double() - expected.detach().double()).abs() - allowed
            assert excess.max().item() <= 0, (
                f"{name} {label}: max|diff| {max_abs_diff(got, expected):.3e}, "
                f"worst excess over the allowed {excess.max().item():.3e}")


def test_automatic_choice_on_gpu_is_a_fused_backend(device):
    from fastattn import _dispatch
    chosen = _dispatch.resolve_backend("bias_gelu", device)
    assert chosen in ("triton", "cuda"), chosen
