"""The fused FFN with stock PyTorch ops (F.linear, F.gelu, F.linear): the fallback that runs anywhere.

Saved for the backward, as by every backend: pre = x @ W1^T + b1, the GELU's input, in x's dtype
(see fastattn/ops/ffn.py). Dropout draws its mask from a torch.Generator seeded with the op's seed, as
fastattn/backends/torch_layer_norm.py does, so the backward regenerates it; the mask differs from
the Philox stream of the triton and cuda backends.
"""

import torch
import torch.nn.functional as F

from .._rng import dropout_scale
from ._weight_layout import weight_grad
from .torch_layer_norm import _keep_mask


def _dropout(t, dropout_p, seed):
    return t * _keep_mask(seed, dropout_p, t.shape, t.device).to(t.dtype) * dropout_scale(dropout_p)


def ffn_up(x, w1, b1, approximate, store_pre):
    """(h, pre): h = gelu(x @ W1^T + b1), and pre = x @ W1^T + b1 when store_pre (else empty)."""
    pre = F.linear(x, w1, b1)
    return F.gelu(pre, approximate=approximate), (pre if store_pre else x.new_empty(0))


def ffn_inference(x, w1, b1, w2, b2, approximate):
    """The forward of a call that keeps nothing for a backward and has no dropout, x of any shape:
    what the op front runs in plain eager mode (no row views, no placeholder for pre)."""
    return F.linear(F.gelu(F.linear(x, w1, b1), approximate=approximate), w2, b2)


def ffn_fwd(x, w1, b1, w2, b2, approximate, dropout_p, seed, store_pre):
    h, pre = ffn_up(x, w1, b1, approximate, store_pre)
    out = F.linear(h, w2, b2)
    if seed is not None:
        out = _dropout(out, dropout_p, seed)
    return out, h, pre


def ffn_bwd(dy, x, w1, w2, h, pre, approximate, dropout_p, seed):
    if seed is not None:
        dy = _dropout(dy, dropout_p, seed)
    dw2, db2 = weight_grad(w2, dy, h, torch.mm), dy.sum(0)
    da = torch.ops.aten.gelu_backward(dy @ w2, pre, approximate=approximate)
    return da @ w1, weight_grad(w1, da, x, torch.mm), da.sum(0), dw2, db2
