"""fastattn.masked_softmax: softmax(scale * scores) over the keys each query sees, with autograd.

Two custom ops carry the work so that torch.compile traces through them: `fastattn::
masked_softmax_fwd` returns the probabilities y, and `fastattn::masked_softmax_bwd` returns the
gradient of the scores from y and dy alone (dx = scale * y * (dy - sum(dy * y))), so the backward
saves only the output. The padding mask and causality need not be known to the backward: y is
zero wherever a key was hidden, and so is dx.
"""

from typing import Optional

import torch
from torch import Tensor

from .. import _autocast, _checks
from ._fused_op import fused_op
from ..backends import module_for
from .._dispatch import resolve_backend

OP = "masked_softmax"


def _backend_module(name):
    return module_for(name, "softmax")


@fused_op("fastattn::masked_softmax_fwd")
def masked_softmax_fwd(scores: Tensor, key_padding_mask: Optional[Tensor], causal: bool,
                       scale: float, backend: str) -> Tensor:
    return _backend_module(backend).masked_softmax_fwd(scores, key_padding_mask, causal, scale)


@masked_softmax_fwd.register_fake
def _(scores, key_padding_mask, causal, scale, backend):
    return torch.empty_like(scores, memory_format=torch.contiguous_format)


@fused_op("fastattn::masked_softmax_bwd")
def masked_softmax_bwd(grad_out: Tensor, out: Tensor, scale: float, backend: str) -> Tensor:
    return _backend_module(backend).masked_softmax_bwd(grad_out, out, scale)


@masked_softmax_bwd.register_fake
def _(grad_out, out, scale, backend):
    return torch.empty_like(out, memory_format=torch.contiguous_format)


def _setup_context(ctx, inputs, output):
    _scores, _mask, _causal, scale, backend = inputs
    ctx.save_for_backward(output)
    ctx.scale, ctx.backend = scale, backend


def _backward(ctx, grad_out):
    (out,) = ctx.saved_tensors
    return masked_softmax_bwd(grad_out, out, ctx.scale, ctx.backend), None, None, None, None


masked_softmax_fwd.register_autograd(_backward, setup_context=_setup_context)


def _check_arguments(scores, key_padding_mask, causal, scale):
    _checks.check_float_tensor(OP, "scores", scores)
    if scores.dim() != 4:
        raise ValueError(f"fastattn.{OP}: scores must be 4D [batch, heads, queries, keys], "
                         f"got shape {list(scores.shape)}")
    if key_padding_mask is not None:
        _checks.check_bool_mask(OP, "key_padding_mask", key_padding_mask)
        batch, keys = scores.shape[0], scores.shape[-1]
        _checks.check_shape(OP, "key_padding_mask", key_padding_mask, (batch, keys))
        _checks.check_same_device(OP, [("scores", scores), ("key_padding_mask", key_padding_mask)])
    _checks.check_bool(OP, "causal", causal)
    _checks.check_finite_real(OP, "scale", scale)


def masked_softmax(scores, *, key_padding_mask=None, causal=False, scale=1.0, backend=None):
    """softmax(scale * scores) over the last dimension of scores [B, H, Sq, Sk].

    key_padding_mask [B, Sk] (bool, True = a real token; any pattern) hides keys; causal hides keys
    j > i + Sk - Sq from query i (bottom-right aligned); both may be given. Hidden keys get
    probability 0, and a query that sees no key gets an all-zero row (and zero gradient).
    Statistics are float32; the result has scores' dtype.
    """
    if _autocast.enabled(scores):  # float32, as torch's softmax under autocast
        return _autocast.call(masked_softmax, _autocast.FLOAT32, scores,
                              key_padding_mask=key_padding_mask, causal=causal, scale=scale,
                              backend=backend)
    _check_arguments(scores, key_padding_mask, causal, scale)
    name = resolve_backend(OP, scores.device, backend, inputs=(scores,))
    return masked_softmax_fwd(scores, key_padding_mask, causal, float(scale), name)
