"""The numerics rule of DESIGN.md §5 (after flash-attention's tests).

ref = the reference upcast to float64, eager = the reference in the test dtype, out = the kernel.
Require max|out - ref| <= factor * max|eager - ref| + floor, factor 2 for outputs, 3 for gradients.
"""

import torch

FLOOR = {torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 1e-2}
OUTPUT_FACTOR, GRAD_FACTOR = 2.0, 3.0


def max_abs_diff(a, b):
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


def assert_numerics(name, out, ref, eager, factor=OUTPUT_FACTOR):
    assert out.shape == ref.shape, f"{name}: shape {list(out.shape)} != reference {list(ref.shape)}"
    assert torch.isfinite(out).all(), f"{name}: non-finite values in the output"
    error, eager_error = max_abs_diff(out, ref), max_abs_diff(eager, ref)
    bound = factor * eager_error + FLOOR[out.dtype]
    assert error <= bound, (f"{name}: max|out-ref| = {error:.3e} exceeds {factor:g} * "
                            f"max|eager-ref| ({eager_error:.3e}) + {FLOOR[out.dtype]:g}")


def assert_grad_numerics(name, out, ref, eager):
    assert_numerics(name, out, ref, eager, factor=GRAD_FACTOR)
