"""fastattn.bias_gelu: gelu(x + bias) over the last dimension, with autograd.

Two custom ops carry the work so that torch.compile traces through them: `fastattn::bias_gelu_fwd`
returns the activation, `fastattn::bias_gelu_bwd` returns (dx, dbias). The backward recomputes the
activation's slope from the saved inputs x and bias (not from the output), and the bias gradient is
reduced from float32 partial sums in a fixed order, so it is the same on every run.
"""


import torch
from torch import Tensor

from .. import _checks
from ._fused_op import fused_op
from ..backends import module_for
from .._dispatch import resolve_backend

OP = "bias_gelu"
APPROXIMATIONS = ("none", "tanh")


def _backend_module(name):
    return module_for(name, "gelu")


@fused_op("fastattn::bias_gelu_fwd")
def bias_gelu_fwd(x: Tensor, bias: Tensor, approximate: str, backend: str) -> Tensor:
    return _backend_module(backend).bias_gelu_fwd(_checks.rows_view(x), bias.contiguous(), approximate)


@bias_gelu_fwd.register_fake
def _(x, bias, approximate, backend):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@fused_op("fastattn::bias_gelu_bwd")
def bias_gelu_bwd(grad_out: Tensor, x: Tensor, bias: Tensor, approximate: str,
                  backend: str) -> tuple[Tensor, Tensor]:
    return _backend_module(backend).bias_gelu_bwd(
        _checks.rows_view(grad_out), _checks.rows_view(x), bias.contiguous(), approximate)


@bias_gelu_bwd.register_fake
def _(grad_out, x, bias, approximate, backend):
    return (torch.empty_like(x, memory_format=torch.contiguous_format),
            torch.empty_like(bias, memory_format=torch.contiguous_format))


def _setup_context(ctx, inputs, output):
    x, bias, approximate, backend = inputs
    ctx.save_for_backward(x, bias)
    ctx.approximate, ctx.backend = approximate, backend


def _backward(ctx, grad_out):
    x, bias = ctx.saved_tensors
    dx, dbias = bias_gelu_bwd(grad_out, x, bias, ctx.approximate, ctx.backend)
    return dx, dbias, None, None


bias_gelu_fwd.register_autograd(_backward, setup_context=_setup_context)


def _check_arguments(x, bias, approximate):
    _checks.check_float_tensor(OP, "x", x)
    if x.dim() < 1 or x.shape[-1] == 0:
        raise ValueError(f"fastattn.{OP}: x must have a non-empty last (hidden) dimension, "
                         f"got shape {list(x.shape)}")
    _checks.check_float_tensor(OP, "bias", bias)
    _checks.check_shape(OP, "bias", bias, (x.shape[-1],))
    _checks.check_same_device(OP, [("x", x), ("bias", bias)])
    _checks.check_choice(OP, "approximate", approximate, APPROXIMATIONS)


def bias_gelu(x, bias, *, approximate="none", backend=None):
    """gelu(x + bias) over the last dimension: "none" is the exact erf GELU (BERT), "tanh" GPT2's
    gelu_new. Math is float32 (x + bias is not rounded first); the result has x's dtype. bias is
    cast to x's dtype. Differentiable in x and bias."""
    _check_arguments(x, bias, approximate)
    name = resolve_backend(OP, x.device, backend, inputs=(x, bias))
    out = bias_gelu_fwd(_checks.as_rows(x), bias.to(x.dtype), approximate, name)
    return out.reshape_as(x)
