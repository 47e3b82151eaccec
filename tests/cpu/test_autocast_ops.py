"""The fused ops under torch.autocast (fastattn/_autocast.py) on CPU autocast (bfloat16), torch
backend (tests/autocast_cases.py); the interpret tier runs the same cases on triton, the gpu tier
the patched models under CUDA autocast on every backend."""

import pytest
import torch

import autocast_cases
import fastattn

BF16 = torch.bfloat16


def _leaves(*shapes, dtype=torch.float32):
    torch.manual_seed(0)
    return [torch.randn(*shape, dtype=dtype, requires_grad=True) for shape in shapes]


def _under_autocast(fn, *args):
    with torch.autocast("cpu", dtype=BF16):
        return fn(*args)


@pytest.mark.parametrize("case", list(autocast_cases.cases("torch", BF16)))
def test_op_under_autocast_computes_in_its_policys_dtype(case):
    autocast_cases.check_op_under_autocast(case, "torch", BF16)


def test_layer_norm_takes_a_lower_precision_x_beside_a_float32_residual():
    """What a patched block hands it under autocast: a linear's bfloat16 output, float32 hidden
    states."""
    x, residual, weight, bias = _leaves((5, 32), (5, 32), (32,), (32,))
    y, h = _under_autocast(lambda *a: fastattn.layer_norm_residual(*a, return_residual=True),
                           x.to(BF16), residual, weight, bias)
    assert y.dtype == h.dtype == torch.float32
    torch.testing.assert_close(h, x.to(BF16).float() + residual, rtol=0, atol=0)


def test_without_autocast_mixed_dtypes_are_still_refused():
    x, residual, weight, bias = _leaves((5, 32), (5, 32), (32,), (32,))
    with pytest.raises(TypeError, match="residual must have the dtype of x"):
        fastattn.layer_norm_residual(x.to(BF16), residual, weight, bias)
