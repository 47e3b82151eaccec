"""fastattn.ffn: linear(gelu(linear(x, w1, b1)), w2, b2), dropout on the output, with autograd.

Two custom ops carry the work so that torch.compile traces through them: `fastattn::ffn_fwd`
returns (out, h, pre) and `fastattn::ffn_bwd` returns (dx, dw1, db1, dw2, db2).

Saved for the backward: h = gelu(x @ W1^T + b1) (the input of the down projection, needed for dW2)
and pre = x @ W1^T + b1 (the GELU's input, rounded once to x's dtype as eager's linear output is);
the triton backend forms gelu'(pre) in float32 inside the epilogue of the GEMM that produces
dA = (dY @ W2) * gelu'(pre).

Keep pre or recompute it? (h cannot give it back: GELU is not invertible below z = -0.75.)
Recomputing costs a GEMM of 2 * rows * in * hidden FLOPs; keeping it costs one write and one read
of rows * hidden elements, 4 bytes per element in 16-bit types. That is
in / 2 FLOPs per byte (384 for BERT-base's in = 768, 512 for GPT2-medium's 1024), above an H100's
ridge point (~990 dense bf16 TFLOP/s / 3.35 TB/s, about 300 FLOP/byte) and an A100's (312 / 2.0,
about 160): the write and read take less time than the GEMM would, by about 1.3x on an H100 for
BERT-base (an estimate; a GPU session measures it). Eager PyTorch keeps the same tensor (the GELU's
input). pre is written only when gradients are needed; inference writes h alone. Recomputing
would win only for in below ~600 (16-bit), smaller than the models this op serves.

Dropout keeps output element (row, col) of the [rows, out] result iff Philox(seed, row * out + col)
>= p on the triton and cuda backends (fastattn.reference.dropout_keep_mask(seed, (rows, out), p));
the backward regenerates it. The torch backend draws from a torch.Generator seeded the same way.
"""

from typing import Optional

import torch
from torch import Tensor

from .. import _autocast, _checks, _tracing
from ._fused_op import fused_op
from ..backends import module_for
from ..backends._weight_layout import empty_like_weight
from .._dispatch import resolve_backend
from .._rng import draw_dropout_seed, seed_value

OP = "ffn"
APPROXIMATIONS = ("none", "tanh")
# The Triton GEMM indexes with int32 offsets: larger operands go to another backend.
TRITON_MAX_ELEMENTS = 2**31 - 1


def _backend_module(name):
    return module_for(name, "ffn")


@fused_op("fastattn::ffn_fwd")
def ffn_fwd(x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor, approximate: str,
            dropout_p: float, seed: Optional[Tensor], store_pre: bool,
            backend: str) -> tuple[Tensor, Tensor, Tensor]:
    return _backend_module(backend).ffn_fwd(_checks.rows_view(x), w1, b1.contiguous(), w2,
                                            b2.contiguous(), approximate, dropout_p,
                                            seed_value(seed), store_pre)


@ffn_fwd.register_fake
def _(x, w1, b1, w2, b2, approximate, dropout_p, seed, store_pre, backend):
    rows, hidden = x.shape[0], w1.shape[0]
    pre = x.new_empty(rows, hidden) if store_pre else x.new_empty(0)
    return x.new_empty(rows, w2.shape[0]), x.new_empty(rows, hidden), pre


@fused_op("fastattn::ffn_bwd")
def ffn_bwd(dy: Tensor, x: Tensor, w1: Tensor, w2: Tensor, h: Tensor, pre: Tensor,
            approximate: str, dropout_p: float, seed: Optional[Tensor],
            backend: str) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    return _backend_module(backend).ffn_bwd(_checks.rows_view(dy), _checks.rows_view(x), w1, w2, h,
                                            pre, approximate, dropout_p, seed_value(seed))


@ffn_bwd.register_fake
def _(dy, x, w1, w2, h, pre, approximate, dropout_p, seed, backend):
    # Weight gradients come laid out as the weights are (backends/_weight_layout.py).
    return (x.new_empty(x.shape), empty_like_weight(w1), w1.new_empty(w1.shape[0]),
            empty_like_weight(w2), w2.new_empty(w2.shape[0]))


def _setup_context(ctx, inputs, output):
    x, w1, _b1, w2, _b2, approximate, dropout_p, seed, store_pre, backend = inputs
    _out, h, pre = output
    if not store_pre:
        raise RuntimeError("fastattn::ffn_fwd: the backward needs the pre-activation, so call it "
                           "with store_pre=True when gradients are required")
    ctx.save_for_backward(x, w1, w2, h, pre, seed)
    ctx.approximate, ctx.dropout_p, ctx.backend = approximate, dropout_p, backend
    # h and pre are internal outputs: their gradients come as None, not as zero tensors to allocate.
    ctx.set_materialize_grads(False)


def _backward(ctx, dy, _dh, _dpre):
    x, w1, w2, h, pre, seed = ctx.saved_tensors
    if dy is None:
        dy = x.new_zeros(x.shape[0], w2.shape[0])
    dx, dw1, db1, dw2, db2 = ffn_bwd(dy, x, w1, w2, h, pre, ctx.approximate, ctx.dropout_p, seed,
                                     ctx.backend)
    return dx, dw1, db1, dw2, db2, None, None, None, None, None


ffn_fwd.register_autograd(_backward, setup_context=_setup_context)


def _usual_call(x, w1, b1, w2, b2, approximate, dropout_p):
    """True only for a call _check_arguments accepts (a fast accept: see _checks.plain_float_on)."""
    if type(x) not in _checks.PLAIN_TENSOR_TYPES:
        return False
    device, dtype = x.device, x.dtype
    if not (dtype in _checks.FLOAT_DTYPES and x.dim() >= 1
            and _checks.plain_float_on(w1, device) and w1.dtype == dtype
            and _checks.plain_float_on(b1, device) and b1.dtype == dtype
            and _checks.plain_float_on(w2, device) and w2.dtype == dtype
            and _checks.plain_float_on(b2, device) and b2.dtype == dtype):
        return False
    w1_shape, w2_shape = w1.shape, w2.shape
    return (len(w1_shape) == 2 and w1_shape[1] == x.shape[-1] > 0 and w1_shape[0] > 0
            and len(w2_shape) == 2 and w2_shape[1] == w1_shape[0] and w2_shape[0] > 0
            and b1.shape == w1_shape[:1] and b2.shape == w2_shape[:1]
            and type(approximate) is str and approximate in APPROXIMATIONS
            and type(dropout_p) is float
            and 0.0 <= dropout_p <= 1.0)


def _check_arguments(x, w1, b1, w2, b2, approximate, dropout_p):
    if _usual_call(x, w1, b1, w2, b2, approximate, dropout_p):
        return
    for name, value in (("x", x), ("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)):
        _checks.check_float_tensor(OP, name, value)
        if name != "x":
            _checks.check_same_dtype(OP, name, value, "x", x)
    if x.dim() < 1 or x.shape[-1] == 0:
        raise ValueError(f"fastattn.{OP}: x must have a non-empty last (input feature) dimension, "
                         f"got shape {list(x.shape)}")
    width = x.shape[-1]
    if w1.dim() != 2 or w1.shape[1] != width or w1.shape[0] == 0:
        raise ValueError(f"fastattn.{OP}: w1 must be [hidden, {width}] (nn.Linear layout [out, in], "
                         f"in = x.shape[-1], hidden >= 1), got shape {list(w1.shape)}")
    hidden = w1.shape[0]
    _checks.check_shape(OP, "b1", b1, (hidden,))
    if w2.dim() != 2 or w2.shape[1] != hidden or w2.shape[0] == 0:
        raise ValueError(f"fastattn.{OP}: w2 must be [out, {hidden}] (nn.Linear layout [out, in], "
                         f"in = w1.shape[0], out >= 1), got shape {list(w2.shape)}")
    _checks.check_shape(OP, "b2", b2, (w2.shape[0],))
    _checks.check_same_device(OP, [("x", x), ("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2)])
    _checks.check_choice(OP, "approximate", approximate, APPROXIMATIONS)
    _checks.check_real(OP, "dropout_p", dropout_p, low=0.0, high=1.0)


def _unsupported(x, w1, w2):
    """Backends that cannot take this call, and why."""
    rows = x.numel() // x.shape[-1]
    sizes = (rows * x.shape[-1], rows * w1.shape[0], rows * w2.shape[0], w1.numel(), w2.numel())
    if isinstance(rows, int):  # eager calls and static shapes: one comparison
        fits = max(sizes) <= TRITON_MAX_ELEMENTS
    else:  # a dynamic size under torch.export / torch.compile counts as too large: no guard on it
        fits = all(_tracing.size_at_most(n, TRITON_MAX_ELEMENTS, unknown=False) for n in sizes)
    if not fits:
        return {"triton": f"an operand may hold more elements than its int32 indexing reaches "
                          f"({TRITON_MAX_ELEMENTS})"}
    return {}


def ffn(x, w1, b1, w2, b2, *, approximate="none", dropout_p=0.0, backend=None):
    """The transformer feed-forward network: linear(gelu(linear(x, w1, b1)), w2, b2), then dropout.

    x [..., in]; w1 [hidden, in], b1 [hidden], w2 [out, hidden], b2 [out] (nn.Linear layout), all in
    x's dtype. approximate: "none" (exact erf GELU, BERT) or "tanh" (GPT2's gelu_new). dropout_p
    drops output elements (as BERT and GPT2 do after the down projection), scaling the kept ones by
    1 / (1 - p). Returns [..., out]. Differentiable in x, w1, b1, w2 and b2.
    """
    if _autocast.enabled(x):  # autocast's lower precision, as torch's linear under autocast
        return _autocast.call(ffn, _autocast.LOWER_PRECISION, x, w1, b1, w2, b2,
                              approximate=approximate, dropout_p=dropout_p, backend=backend)
    _check_arguments(x, w1, b1, w2, b2, approximate, dropout_p)
    name = resolve_backend(OP, x.device, backend, _unsupported(x, w1, w2),
                           inputs=(x, w1, b1, w2, b2))
    dropout_p = float(dropout_p)
    seed = draw_dropout_seed(dropout_p)
    store_pre = _tracing.needs_grad(x, w1, b1, w2, b2)
    if (name == "torch" and seed is None and not store_pre
            and _tracing.plain_eager(x, w1, b1, w2, b2)):
        return _backend_module(name).ffn_inference(x, w1, b1, w2, b2, approximate)
    rows = x.dim() == 2
    out, _h, _pre = ffn_fwd(x if rows else _checks.as_rows(x), w1, b1, w2, b2, approximate,
                            dropout_p, seed, store_pre, name)
    return out if rows else out.reshape(*x.shape[:-1], w2.shape[0])
