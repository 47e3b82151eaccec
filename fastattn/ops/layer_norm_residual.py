"""fastattn.layer_norm_residual: LN(dropout(x) + residual), fused, with autograd.

Two custom ops carry the work so that torch.compile traces through them: `fastattn::
layer_norm_residual_fwd` returns (y, h, mean, rstd) and `fastattn::layer_norm_residual_bwd`
returns (dh, dx, dweight, dbias). h = dropout(x) + residual is written only when the caller returns
it or the backward needs it; dx is written only under dropout (otherwise dx == dh).
"""

from typing import Optional

import torch
from torch import Tensor

from .. import _autocast, _checks, _tracing
from ._fused_op import fused_op
from ..backends import module_for
from ..backends._precision import compute_dtype
from .._dispatch import resolve_backend
from .._rng import draw_dropout_seed, seed_value

OP = "layer_norm_residual"

# Widest hidden size each fused backend takes (triton: any, wide rows in chunks); wider rows go to
# another backend under the automatic choice.
MAX_HIDDEN = {"cuda": 32768}
_NARROWEST_LIMIT = min(MAX_HIDDEN.values())


def _backend_module(name):
    return module_for(name, "layer_norm")


@fused_op("fastattn::layer_norm_residual_fwd")
def layer_norm_residual_fwd(x: Tensor, residual: Optional[Tensor], weight: Tensor, bias: Tensor,
                            eps: float, dropout_p: float, seed: Optional[Tensor], store_h: bool,
                            backend: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    x = _checks.rows_view(x)
    residual = None if residual is None else _checks.rows_view(residual)
    return _backend_module(backend).layer_norm_residual_fwd(
        x, residual, weight.contiguous(), bias.contiguous(), eps, dropout_p, seed_value(seed), store_h)


@layer_norm_residual_fwd.register_fake
def _(x, residual, weight, bias, eps, dropout_p, seed, store_h, backend):
    n_rows = x.shape[0]
    h = torch.empty_like(x) if store_h else x.new_empty(0)
    mean = x.new_empty(n_rows, dtype=compute_dtype(x.dtype))  # float32 except for float64
    return torch.empty_like(x), h, mean, torch.empty_like(mean)


@fused_op("fastattn::layer_norm_residual_bwd")
def layer_norm_residual_bwd(dy: Tensor, dh_out: Optional[Tensor], h: Tensor, weight: Tensor,
                            mean: Tensor, rstd: Tensor, dropout_p: float, seed: Optional[Tensor],
                            backend: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    dy = _checks.rows_view(dy)
    dh_out = None if dh_out is None else _checks.rows_view(dh_out)
    return _backend_module(backend).layer_norm_residual_bwd(
        dy, dh_out, _checks.rows_view(h), weight.contiguous(), mean, rstd, dropout_p, seed_value(seed))


@layer_norm_residual_bwd.register_fake
def _(dy, dh_out, h, weight, mean, rstd, dropout_p, seed, backend):
    dx = torch.empty_like(h) if seed is not None else h.new_empty(0)
    return torch.empty_like(h), dx, torch.empty_like(weight), torch.empty_like(weight)


def _setup_context(ctx, inputs, output):
    x, residual, weight, _bias, _eps, dropout_p, seed, store_h, backend = inputs
    _y, h, mean, rstd = output
    if not store_h and (residual is not None or seed is not None):
        raise RuntimeError("fastattn::layer_norm_residual_fwd: the backward needs h = dropout(x) + "
                           "residual, so call it with store_h=True when gradients are required")
    # Without a stored h, h is x itself (no residual, no dropout).
    ctx.save_for_backward(h if store_h else x, weight, mean, rstd, seed)
    ctx.dropout_p, ctx.backend, ctx.store_h = dropout_p, backend, store_h
    ctx.has_residual = residual is not None
    # Unused outputs (h when the caller did not take it) then give None instead of a zero tensor
    # that the backward would have to read.
    ctx.set_materialize_grads(False)


def _backward(ctx, dy, dh_out, _dmean, _drstd):
    h, weight, mean, rstd, seed = ctx.saved_tensors
    if dy is None:
        dy = torch.zeros_like(h)
    if not ctx.store_h:
        dh_out = None  # the gradient of the empty placeholder output
    dh, dx, dweight, dbias = layer_norm_residual_bwd(dy, dh_out, h, weight, mean, rstd,
                                                     ctx.dropout_p, seed, ctx.backend)
    grad_x = dx if seed is not None else dh
    grad_residual = dh if ctx.has_residual else None
    return grad_x, grad_residual, dweight, dbias, None, None, None, None, None


layer_norm_residual_fwd.register_autograd(_backward, setup_context=_setup_context)


def _usual_call(x, residual, weight, bias, eps, dropout_p, return_residual):
    """True only for a call _check_arguments accepts (a fast accept: see _checks.plain_float_on)."""
    if type(x) not in _checks.PLAIN_TENSOR_TYPES:
        return False
    device, shape = x.device, x.shape
    hidden = shape[-1:]
    return (x.dtype in _checks.FLOAT_DTYPES and len(hidden) == 1 and hidden[0] > 0
            and (residual is None or (_checks.plain_float_on(residual, device)
                                      and residual.shape == shape and residual.dtype == x.dtype))
            and _checks.plain_float_on(weight, device) and weight.shape == hidden
            and _checks.plain_float_on(bias, device) and bias.shape == hidden
            and type(eps) is float and eps >= 0.0 and type(dropout_p) is float
            and 0.0 <= dropout_p <= 1.0 and type(return_residual) is bool)


def _check_arguments(x, residual, weight, bias, eps, dropout_p, return_residual):
    if _usual_call(x, residual, weight, bias, eps, dropout_p, return_residual):
        return
    _checks.check_float_tensor(OP, "x", x)
    if x.dim() < 1 or x.shape[-1] == 0:
        raise ValueError(f"fastattn.{OP}: x must have a non-empty last (hidden) dimension, "
                         f"got shape {list(x.shape)}")
    hidden = x.shape[-1]
    if residual is not None:
        _checks.check_float_tensor(OP, "residual", residual)
        _checks.check_shape(OP, "residual", residual, x.shape)
        _checks.check_same_dtype(OP, "residual", residual, "x", x)
    for name, value in (("weight", weight), ("bias", bias)):
        _checks.check_float_tensor(OP, name, value)
        _checks.check_shape(OP, name, value, (hidden,))
    _checks.check_same_device(OP, [("x", x), ("residual", residual), ("weight", weight), ("bias", bias)])
    _checks.check_real(OP, "eps", eps, low=0.0)
    _checks.check_real(OP, "dropout_p", dropout_p, low=0.0, high=1.0)
    _checks.check_bool(OP, "return_residual", return_residual)


def layer_norm_residual(x, residual, weight, bias, eps=1e-5, *, dropout_p=0.0,
                        return_residual=False, backend=None):
    """LayerNorm over the last dimension of dropout(x) + residual.

    Returns LN(h), or (LN(h), h) with return_residual=True (pre-LN blocks carry h on as the next
    residual). residual=None gives plain LayerNorm of dropout(x). Statistics are float32; h is
    rounded to x's dtype, as eager `x + residual` is. weight and bias are cast to x's dtype.
    """
    if _autocast.enabled(x):  # float32, as torch's layer_norm under autocast
        return _autocast.call(layer_norm_residual, _autocast.FLOAT32, x, residual, weight, bias,
                              eps, dropout_p=dropout_p, return_residual=return_residual,
                              backend=backend)
    _check_arguments(x, residual, weight, bias, eps, dropout_p, return_residual)
    hidden = x.shape[-1]
    unsupported = None
    if hidden > _NARROWEST_LIMIT:
        unsupported = {name: f"hidden size {hidden} exceeds its limit of {limit}"
                       for name, limit in MAX_HIDDEN.items() if hidden > limit}
    name = resolve_backend(OP, x.device, backend, unsupported, size=x.numel() // hidden,
                           inputs=(x, residual, weight, bias))
    if weight.dtype != x.dtype:
        weight, bias = weight.to(x.dtype), bias.to(x.dtype)
    elif bias.dtype != x.dtype:
        bias = bias.to(x.dtype)
    dropout_p = float(dropout_p)
    seed = draw_dropout_seed(dropout_p)
    h_is_x = residual is None and seed is None
    if (name == "torch" and seed is None and not _tracing.needs_grad(x, residual, weight, bias)
            and _tracing.plain_eager(x, residual, weight, bias)):
        y, h = _backend_module(name).layer_norm_residual_inference(x, residual, weight, bias,
                                                                   float(eps))
        return (y, h) if return_residual else y
    # needs_grad only where h's storing depends on it: this runs on every kernel-backend call.
    store_h = not h_is_x and (return_residual or _tracing.needs_grad(x, residual, weight, bias))
    rows = x.dim() == 2
    y, h, _mean, _rstd = layer_norm_residual_fwd(
        x if rows else _checks.as_rows(x),
        residual if rows or residual is None else _checks.as_rows(residual),
        weight, bias, float(eps), dropout_p, seed, store_h, name)
    if not rows:
        y = y.reshape_as(x)  # reshape(x.shape) parses a torch.Size: 1.2 us more a call
    if not return_residual:
        return y
    return y, (x if h_is_x else h if rows else h.reshape_as(x))

