"""Host side of the CUDA FFN: cuBLAS(Lt) GEMMs through fastattn._C.ffn_linear (ATen's addmm /
_addmm_activation with their bias and GELU epilogues), our bias+GELU kernels (csrc/bias_gelu.cu)
and the output dropout (csrc/ffn_dropout.cu).

cuBLASLt's GELU epilogue is the tanh form and gives no pre-activation through ATen, so it is used
for the up projection only when nothing needs the backward (inference, approximate="tanh"). The erf
form, and any call that will be differentiated, runs the GEMM with cuBLASLt's bias epilogue,
pre = x @ W1^T + b1 (what the backward needs, fastattn/ops/ffn.py), then our GELU kernel
(bias_gelu with a zero bias; its backward also gives db1 as the column sums of dA).
"""

import torch

from .. import _alloc, _extension
from .._rng import dropout_scale
from .cuda_gelu import bias_gelu_bwd, bias_gelu_fwd


def _linear(a, weight, bias, out, gelu_tanh=False):
    """out = a @ weight^T (+ bias) (GELU-tanh fused if asked); a and weight may be strided views."""
    if out.numel():
        _extension.require().ffn_linear(a, weight, bias, out, gelu_tanh)
    return out


def _dropout(t, dropout_p, seed):
    out = _alloc.empty_like(t)
    _extension.require().ffn_dropout(t, out, dropout_p, dropout_scale(dropout_p), seed)
    return out


def ffn_up(x, w1, b1, approximate, store_pre):
    """(h, pre): h = gelu(x @ W1^T + b1), and pre = x @ W1^T + b1 when store_pre (else empty)."""
    rows, hidden = x.shape[0], w1.shape[0]
    if approximate == "tanh" and not store_pre:
        return _linear(x, w1, b1, _alloc.empty((rows, hidden), x), gelu_tanh=True), x.new_empty(0)
    pre = _linear(x, w1, b1, _alloc.empty((rows, hidden), x))
    return bias_gelu_fwd(pre, torch.zeros_like(b1), approximate), (pre if store_pre else x.new_empty(0))


def ffn_fwd(x, w1, b1, w2, b2, approximate, dropout_p, seed, store_pre):
    h, pre = ffn_up(x, w1, b1, approximate, store_pre)
    out = _linear(h, w2, b2, _alloc.empty((x.shape[0], w2.shape[0]), x))
    if seed is not None:
        out = _dropout(out, dropout_p, seed)
    return out, h, pre


def ffn_bwd(dy, x, w1, w2, h, pre, approximate, dropout_p, seed):
    rows, width = x.shape
    if seed is not None:
        dy = _dropout(dy, dropout_p, seed)
    dh = _linear(dy, w2.t(), None, _alloc.empty((rows, w1.shape[0]), x))
    da, db1 = bias_gelu_bwd(dh, pre, pre.new_zeros(pre.shape[1]), approximate)
    db2 = dy.sum(0, dtype=torch.float32).to(x.dtype)
    # With no rows the weight gradients are zero (cuBLAS with K = 0 writes them as such too).
    dw2 = _linear(dy.t(), h.t(), None, _alloc.empty(tuple(w2.shape), x))
    dw1 = _linear(da.t(), x.t(), None, _alloc.empty(tuple(w1.shape), x))
    dx = _linear(da, w1.t(), None, _alloc.empty((rows, width), x))
    return dx, dw1, db1, dw2, db2
