"""Host side of the CUDA FFN: cuBLASLt GEMMs with their fused epilogues through
fastattn._C.ffn_gemm (csrc/ffn_cublaslt.cpp), our bias+GELU kernels (csrc/bias_gelu.cu) and the
output dropout (csrc/ffn_dropout.cu).

cuBLASLt's GELU epilogues are the tanh form, so they serve approximate="tanh" only, and only in
16-bit (in float32 their GELU is measurably less exact than ours: float32 takes the erf form's
route):
- forward, up projection: GELU_AUX_BIAS writes h = gelu(x @ W1^T + b1) and, as its aux output, the
  pre-activation pre = x @ W1^T + b1 the backward needs; GELU_BIAS when nothing will be
  differentiated (no pre). The erf form runs BIAS (pre) and then our GELU kernel (bias_gelu with a
  zero bias).
- down projection: BIAS.
- backward: DGELU_BGRAD gives dA = (dY @ W2) * gelu'(pre) and db1 (the column sums of dA) in one
  call for the tanh form in 16-bit (DGELU_BGRAD_DTYPES); float32 (whose derivative it leaves too
  inexact) and the erf form run a plain GEMM and our bias_gelu backward (which also gives db1).
  dW2 = dY^T @ h with BGRADB, which gives db2 (the column sums of dY) in the same call, in
  bfloat16 only (float16 and float32: a plain GEMM and dY's column sums in float32);
  dW1 and dX are plain GEMMs.

A call cuBLASLt cannot take (the extension built without it, the aux matrix's row stride not a
multiple of 8 as for hidden 37, an alignment or a type no algorithm accepts, an empty dimension)
runs the unfused path instead: ATen's GEMM (fastattn._C.ffn_linear), then our kernels or a torch
reduction. fastattn._C.ffn_gemm_counts() counts both per epilogue.
"""

import torch

from .. import _alloc, _extension
from .._rng import dropout_scale
from ._weight_layout import stored_transposed, weight_grad
from .cuda_gelu import bias_gelu_bwd, bias_gelu_fwd


# The dtypes whose tanh-form backward takes DGELU_BGRAD (float32 never: see _gelu_input_grad).
# An H100 profile of GPT2's training step (2026-11-26) showed a cuBLASLt epilogue kernel
# (epilogue::impl::globalKernel) of 185 us a layer beside the FFN backward's GEMMs, from DGELU_BGRAD
# or BGRADB; benchmarks/ffn_epilogues.py times the step with each switched off.
DGELU_BGRAD_DTYPES = (torch.float16, torch.bfloat16)
# The dtypes whose dW2 takes BGRADB. Its float16 bias gradient was 3.4x further from the float64
# reference than eager's (H100, 2026-11-26: 0.022 at |db2| ~ 16, 1.4 ulps); the column sums it
# saves cost one read of dY.
BGRADB_DTYPES = (torch.bfloat16,)


def _fused(a, weight, out, epilogue, bias=None, aux=None):
    """out = a @ weight^T with cuBLASLt's `epilogue` (fastattn._C.ffn_gemm); False, with nothing
    written, when this call cannot take it."""
    declined = _extension.require().ffn_gemm(a, weight, out, epilogue, bias, aux,
                                             torch.backends.cuda.matmul.allow_tf32)
    return declined is None


def _linear(a, weight, bias, out, gelu_tanh=False):
    """out = a @ weight^T (+ bias) (GELU-tanh fused if asked); a and weight may be strided views."""
    if out.numel():
        epilogue = "gelu_bias" if gelu_tanh else ("none" if bias is None else "bias")
        if not _fused(a, weight, out, epilogue, bias):
            _extension.require().ffn_linear(a, weight, bias, out, gelu_tanh)
    return out


_ZERO_BIASES = {}


def _zero_bias(size, like):
    """A zero bias for our GELU kernels where the GEMM already added the real one: read-only, so
    kept per (size, dtype, device) instead of allocated and filled (a launch) on every call."""
    key = (size, like.dtype, like.device)
    zeros = _ZERO_BIASES.get(key)
    if zeros is None:
        zeros = _ZERO_BIASES[key] = torch.zeros(size, dtype=like.dtype, device=like.device)
    return zeros


def _dropout(t, dropout_p, seed):
    out = _alloc.empty_like(t)
    _extension.require().ffn_dropout(t, out, dropout_p, dropout_scale(dropout_p), seed)
    return out


def ffn_up(x, w1, b1, approximate, store_pre):
    """(h, pre): h = gelu(x @ W1^T + b1), and pre = x @ W1^T + b1 when store_pre (else empty)."""
    shape = (x.shape[0], w1.shape[0])
    if approximate == "tanh" and x.dtype != torch.float32:  # see _gelu_input_grad
        if not store_pre:
            return _linear(x, w1, b1, _alloc.empty(shape, x), gelu_tanh=True), x.new_empty(0)
        h, pre = _alloc.empty(shape, x), _alloc.empty(shape, x)
        if _fused(x, w1, h, "gelu_aux_bias", b1, pre):
            return h, pre
    pre = _linear(x, w1, b1, _alloc.empty(shape, x))
    return (bias_gelu_fwd(pre, _zero_bias(b1.shape[0], b1), approximate),
            pre if store_pre else x.new_empty(0))


def ffn_fwd(x, w1, b1, w2, b2, approximate, dropout_p, seed, store_pre):
    h, pre = ffn_up(x, w1, b1, approximate, store_pre)
    out = _linear(h, w2, b2, _alloc.empty((x.shape[0], w2.shape[0]), x))
    if seed is not None:
        out = _dropout(out, dropout_p, seed)
    return out, h, pre


def _gelu_input_grad(dy, w2, pre, approximate):
    """(dA, db1): dA = (dY @ W2) * gelu'(pre), db1 = the column sums of dA."""
    # float32 takes our GELU and its derivative: cuBLASLt's GELU epilogues left dW2 (through h)
    # and dW1, dX (through gelu') 10-40x further from the float64 reference than eager float32
    # (H200, 2026-11-26); in 16-bit their error is below the dtype's rounding.
    if approximate == "tanh" and pre.dtype in DGELU_BGRAD_DTYPES:
        da, db1 = _alloc.empty_like(pre), _alloc.empty((pre.shape[1],), pre)
        if _fused(dy, w2.t(), da, "dgelu_bgrad", db1, pre):
            return da, db1
    dh = _linear(dy, w2.t(), None, _alloc.empty(tuple(pre.shape), pre))
    return bias_gelu_bwd(dh, pre, _zero_bias(pre.shape[1], pre), approximate)


def _product(a, b):
    """a @ b as a new row-major matrix (a plain GEMM; a and b may be strided views)."""
    return _linear(a, b.t(), None, _alloc.empty((a.shape[0], b.shape[1]), a))


def _down_weight_grads(dy, h, w2):
    """(dW2, db2) = (dY^T @ h in w2's layout, the column sums of dY). With no rows both are zero
    (cuBLAS with K = 0, on the ATen path, writes dW2 as such). BGRADB sums the rows of the GEMM's
    first operand, dY^T in dW2 = dY^T @ h; a transposed w2 (GPT-2's) is given dW2^T = h^T @ dY,
    whose first operand is h^T, so it takes a plain GEMM and dY's column sums, as float16 does."""
    if h.dtype in BGRADB_DTYPES and not stored_transposed(w2):
        dw2, db2 = _alloc.empty(tuple(w2.shape), h), _alloc.empty((w2.shape[0],), h)
        if _fused(dy.t(), h.t(), dw2, "bgradb", db2):
            return dw2, db2
    return weight_grad(w2, dy, h, _product), dy.sum(0, dtype=torch.float32).to(h.dtype)


def ffn_bwd(dy, x, w1, w2, h, pre, approximate, dropout_p, seed):
    if seed is not None:
        dy = _dropout(dy, dropout_p, seed)
    da, db1 = _gelu_input_grad(dy, w2, pre, approximate)
    dw2, db2 = _down_weight_grads(dy, h, w2)
    dw1 = weight_grad(w1, da, x, _product)
    dx = _linear(da, w1.t(), None, _alloc.empty(tuple(x.shape), x))
    return dx, dw1, db1, dw2, db2
