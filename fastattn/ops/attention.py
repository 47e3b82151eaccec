"""fastattn.attention and fastattn.attention_varlen: fused scaled-dot-product attention with autograd.

Two custom ops carry the work so that torch.compile traces through them, one pair for both the
dense and the packed (varlen) layout (varlen when cu_seqlens_q is given):

    fastattn::attention_fwd(q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                            max_seqlen_k, causal, scale, dropout_p, seed, backend)
        -> (out, saved_softmax)
    fastattn::attention_bwd(dout, q, k, v, out, saved_softmax, <the same mask/size/dropout
                            arguments>, backend) -> (dq, dk, dv)

Backend interface. `fastattn.backends.<name>_attention` provides:
- `attention_fwd(q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
  causal, scale, dropout_p, seed) -> (out, saved_softmax)`: out contiguous, shaped like q;
- `attention_bwd(dout, q, k, v, out, saved_softmax, key_padding_mask, cu_seqlens_q, cu_seqlens_k,
  max_seqlen_q, max_seqlen_k, causal, scale, dropout_p, seed) -> (dq, dk, dv)`, shaped like q, k, v;
- `saved_softmax_like(q, k, cu_seqlens_q, max_seqlen_q, max_seqlen_k) -> Tensor`: an empty tensor
  of the saved_softmax's shape and dtype (the fake function uses it, so it must work on fake
  tensors; every real call must return this shape);
- `SAVED_SOFTMAX`: what saved_softmax holds, for readers: "lse" (triton: float32 log-sum-exp per
  query row, see backends/_attention_layout.py), "none" (torch: the backward recomputes), or
  "probs" (a Megatron-style cuda path keeping the [B, H, Sq, Sk] probabilities; unwritten for
  the decoding calls its fused decode kernels take, whose backward computes them again).
The op hands saved_softmax back to the same backend's backward untouched.

Arguments the front has already normalised: q, k, v have a contiguous last dim (other strides
free); key_padding_mask is bool [B, Sk] or None; cu_seqlens_* are int32 [B + 1] whose values were
checked (eager mode); scale is a float; seed is None (no dropout) or a one-element int64 CPU tensor
from fastattn._rng.draw_dropout_seed, and the keep mask must be
fastattn.reference.attention_dropout_keep_mask(seed, B, H, Sq, Sk, p) (Sq, Sk = max_seqlen for varlen).
"""

import functools
import importlib
import importlib.util
import math
from typing import Optional

import torch
from torch import Tensor

from .. import _autocast, _checks, _tracing
from ._fused_op import fused_op
from ..backends import module_for
from ..backends._attention_layout import dot_precision
from ..backends._device import tile_arch
from .._dispatch import BACKENDS, resolve_backend
from .._rng import draw_dropout_seed, seed_value
from . import cu_seqlens_facts

OP = "attention"
OP_VARLEN = "attention_varlen"
# Head dims the triton kernels are built and checked for (= kernels.attention_settings.HEAD_DIMS).
# The cuda and torch backends take any head dim: their GEMMs (cuBLAS, SDPA) do not care. Other head
# dims (transformers' tiny test models have 8) therefore run there under the automatic choice.
TRITON_HEAD_DIMS = (16, 32, 64, 80, 96, 128, 256)
DECODE_QUERIES = 16  # = kernels.attention_settings.DECODE_BLOCK_M: the triton decode path's limit
# The triton kernels put one program per (sequence, head) pair on their grid's second axis, which
# CUDA caps at 65535: a packed batch of 6000 sequences of 12 heads would fail to launch.
TRITON_MAX_SEQUENCE_HEADS = 65535


def _backend_module(name):
    return module_for(name, "attention")


@functools.lru_cache(maxsize=None)
def _missing_backends():
    # Asked once per process: find_spec walks the file system, once per attention call was
    # measurable host time in a patched model's forward.
    return {name: f"this installation has no {name} attention kernels "
                  f"(fastattn/backends/{name}_attention.py)"
            for name in BACKENDS
            if importlib.util.find_spec(f"fastattn.backends.{name}_attention") is None}


@torch.compiler.assume_constant_result
def _missing_backend_items():
    # torch.compile takes the answer as a constant instead of tracing find_spec (which dynamo
    # refuses). Not merged with _missing_backends: torch 2.11's dynamo ignores this mark on an
    # lru_cache wrapper and traces the wrapped function (test-gpu-versions).
    return tuple(_missing_backends().items())


def missing_backends():
    """name -> why that backend has no attention implementation in this installation."""
    return dict(_missing_backend_items())


@fused_op("fastattn::attention_fwd")
def attention_fwd(q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Optional[Tensor],
                  cu_seqlens_q: Optional[Tensor], cu_seqlens_k: Optional[Tensor],
                  max_seqlen_q: int, max_seqlen_k: int, causal: bool, scale: float,
                  dropout_p: float, seed: Optional[Tensor], backend: str) -> tuple[Tensor, Tensor]:
    return _backend_module(backend).attention_fwd(
        q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal,
        scale, dropout_p, seed_value(seed))


@attention_fwd.register_fake
def _(q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal,
      scale, dropout_p, seed, backend):
    saved = _backend_module(backend).saved_softmax_like(q, k, cu_seqlens_q, max_seqlen_q, max_seqlen_k)
    return torch.empty_like(q, memory_format=torch.contiguous_format), saved


@fused_op("fastattn::attention_bwd")
def attention_bwd(dout: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, saved_softmax: Tensor,
                  key_padding_mask: Optional[Tensor], cu_seqlens_q: Optional[Tensor],
                  cu_seqlens_k: Optional[Tensor], max_seqlen_q: int, max_seqlen_k: int,
                  causal: bool, scale: float, dropout_p: float, seed: Optional[Tensor],
                  backend: str) -> tuple[Tensor, Tensor, Tensor]:
    return _backend_module(backend).attention_bwd(
        dout, q, k, v, out, saved_softmax, key_padding_mask, cu_seqlens_q, cu_seqlens_k,
        max_seqlen_q, max_seqlen_k, causal, scale, dropout_p, seed_value(seed))


@attention_bwd.register_fake
def _(dout, q, k, v, out, saved_softmax, key_padding_mask, cu_seqlens_q, cu_seqlens_k,
      max_seqlen_q, max_seqlen_k, causal, scale, dropout_p, seed, backend):
    return tuple(torch.empty_like(t, memory_format=torch.contiguous_format) for t in (q, k, v))


def _setup_context(ctx, inputs, output):
    (q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal,
     scale, dropout_p, seed, backend) = inputs
    out, saved_softmax = output
    ctx.save_for_backward(q, k, v, out, saved_softmax, key_padding_mask, cu_seqlens_q,
                          cu_seqlens_k, seed)
    ctx.sizes = (max_seqlen_q, max_seqlen_k)
    ctx.options = (causal, scale, dropout_p)
    ctx.backend = backend


def _backward(ctx, dout, _dsaved):
    q, k, v, out, saved, key_padding_mask, cu_q, cu_k, seed = ctx.saved_tensors
    causal, scale, dropout_p = ctx.options
    dq, dk, dv = attention_bwd(dout, q, k, v, out, saved, key_padding_mask, cu_q, cu_k, *ctx.sizes,
                               causal, scale, dropout_p, seed, ctx.backend)
    return dq, dk, dv, None, None, None, None, None, None, None, None, None, None


attention_fwd.register_autograd(_backward, setup_context=_setup_context)


def _check_qkv(op, q, k, v, ndim, layout):
    for name, t in (("q", q), ("k", k), ("v", v)):
        _checks.check_float_tensor(op, name, t)
        _checks.check_dim(op, name, t, ndim, layout)
    _checks.check_same_dtype(op, "k", k, "q", q)
    _checks.check_same_dtype(op, "v", v, "q", q)
    _checks.check_shape(op, "v", v, k.shape)
    head_dim, heads, kv_heads = q.shape[-1], q.shape[1], k.shape[1]  # dim 1 in both layouts
    if k.shape[-1] != head_dim:
        raise ValueError(f"fastattn.{op}: k must have q's head dim {head_dim} (last dim), "
                         f"got shape {list(k.shape)}")
    if head_dim == 0:
        raise ValueError(f"fastattn.{op}: q's head dim (last dim) must be at least 1, got shape "
                         f"{list(q.shape)}")
    if kv_heads == 0 or heads % kv_heads != 0:
        raise ValueError(f"fastattn.{op}: k's head count ({kv_heads}) must divide q's ({heads}) "
                         "(MQA/GQA)")


def _check_options(op, causal, scale, dropout_p):
    _checks.check_bool(op, "causal", causal)
    _checks.check_optional_real(op, "scale", scale, low=0.0)
    _checks.check_real(op, "dropout_p", dropout_p, low=0.0, high=1.0)


def _usual_dense_call(q, k, v, causal, key_padding_mask, scale, dropout_p):
    """True only for a call _check_attention_arguments accepts (a fast accept: see
    _checks.plain_float_on)."""
    if type(q) not in _checks.PLAIN_TENSOR_TYPES:
        return False
    device, dtype, q_shape = q.device, q.dtype, q.shape
    if not (dtype in _checks.FLOAT_DTYPES and _checks.plain_float_on(k, device) and k.dtype == dtype
            and _checks.plain_float_on(v, device) and v.dtype == dtype):
        return False
    k_shape = k.shape
    if not (len(q_shape) == 4 and len(k_shape) == 4 and v.shape == k_shape
            and k_shape[0] == q_shape[0] and k_shape[3] == q_shape[3] > 0
            and k_shape[1] > 0 and q_shape[1] % k_shape[1] == 0):
        return False
    if key_padding_mask is not None and not (
            type(key_padding_mask) is torch.Tensor and key_padding_mask.dtype == torch.bool
            and key_padding_mask.device == device
            and key_padding_mask.shape == (k_shape[0], k_shape[2])):
        return False
    return (type(causal) is bool and (scale is None or (type(scale) is float and scale >= 0.0))
            and type(dropout_p) is float and 0.0 <= dropout_p <= 1.0)


def _check_attention_arguments(q, k, v, causal, key_padding_mask, scale, dropout_p):
    if _usual_dense_call(q, k, v, causal, key_padding_mask, scale, dropout_p):
        return
    _check_qkv(OP, q, k, v, 4, "[batch, heads, seq, head_dim]")
    if k.shape[0] != q.shape[0]:
        raise ValueError(f"fastattn.{OP}: k must have q's batch size {q.shape[0]}, "
                         f"got shape {list(k.shape)}")
    if key_padding_mask is not None:
        _checks.check_bool_mask(OP, "key_padding_mask", key_padding_mask)
        _checks.check_shape(OP, "key_padding_mask", key_padding_mask, (k.shape[0], k.shape[2]))
    _checks.check_same_device(OP, [("q", q), ("k", k), ("v", v),
                                   ("key_padding_mask", key_padding_mask)])
    _check_options(OP, causal, scale, dropout_p)


def _check_cu_seqlens_values(name, cu_seqlens, total, max_seqlen, max_name):
    """Value checks on cu_seqlens' host summary, which cu_seqlens_facts reads back once per tensor
    (a sync on GPUs) and unpad supplies without reading. Skipped while torch.compile traces (the
    values are not known then)."""
    if torch.compiler.is_compiling():
        return
    facts = cu_seqlens_facts.read(cu_seqlens)
    if facts.first != 0 or facts.last != total:
        raise ValueError(f"fastattn.{OP_VARLEN}: {name} must start at 0 and end at the token count "
                         f"{total}, got {facts.first} ... {facts.last}")
    if facts.shortest < 0:
        raise ValueError(f"fastattn.{OP_VARLEN}: {name} must be non-decreasing, got a sequence of "
                         f"length {facts.shortest}")
    if facts.longest > max_seqlen:
        raise ValueError(f"fastattn.{OP_VARLEN}: {max_name} ({max_seqlen}) is smaller than the "
                         f"longest sequence in {name} ({facts.longest})")


def _check_varlen_arguments(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                            causal, scale, dropout_p):
    _check_qkv(OP_VARLEN, q, k, v, 3, "[tokens, heads, head_dim]")
    for name, cu in (("cu_seqlens_q", cu_seqlens_q), ("cu_seqlens_k", cu_seqlens_k)):
        if not isinstance(cu, torch.Tensor):
            raise TypeError(f"fastattn.{OP_VARLEN}: {name} must be a torch.Tensor, got {type(cu).__name__}")
        if cu.dtype != torch.int32:
            raise TypeError(f"fastattn.{OP_VARLEN}: {name} must be int32, got "
                            f"{str(cu.dtype).replace('torch.', '')}")
        if cu.dim() != 1 or cu.shape[0] < 2:
            raise ValueError(f"fastattn.{OP_VARLEN}: {name} must be 1D [batch + 1] with batch >= 1, "
                             f"got shape {list(cu.shape)}")
    if cu_seqlens_k.shape != cu_seqlens_q.shape:
        raise ValueError(f"fastattn.{OP_VARLEN}: cu_seqlens_k must have cu_seqlens_q's shape "
                         f"{list(cu_seqlens_q.shape)}, got {list(cu_seqlens_k.shape)}")
    _checks.check_int(OP_VARLEN, "max_seqlen_q", max_seqlen_q, low=0)
    _checks.check_int(OP_VARLEN, "max_seqlen_k", max_seqlen_k, low=0)
    _checks.check_same_device(OP_VARLEN, [("q", q), ("k", k), ("v", v), ("cu_seqlens_q", cu_seqlens_q),
                                          ("cu_seqlens_k", cu_seqlens_k)])
    _check_options(OP_VARLEN, causal, scale, dropout_p)
    _check_cu_seqlens_values("cu_seqlens_q", cu_seqlens_q, q.shape[0], max_seqlen_q, "max_seqlen_q")
    if not (cu_seqlens_k is cu_seqlens_q and k.shape[0] == q.shape[0]
            and max_seqlen_k == max_seqlen_q):  # self-attention: the same check again
        _check_cu_seqlens_values("cu_seqlens_k", cu_seqlens_k, k.shape[0], max_seqlen_k,
                                 "max_seqlen_k")


def _unsupported_backends(q, k, v, dropout_p, sequences):
    """missing_backends() plus the calls triton does not take: head dims its kernels are not built
    for, more (sequence, head) pairs than its grid takes, and the configurations switched off on
    GPUs (tiles that spill, kernels that computed wrong numbers there:
    kernels/attention_settings.py). q's heads are q.shape[1], dense or packed."""
    unsupported = missing_backends()
    if q.shape[-1] not in TRITON_HEAD_DIMS and "triton" not in unsupported:
        unsupported["triton"] = triton_head_dim_reason(q.shape[-1])
    elif "triton" not in unsupported and not _fits_the_triton_grid(sequences * q.shape[1]):
        unsupported["triton"] = (f"{sequences} sequences x {q.shape[1]} heads exceed the "
                                 f"{TRITON_MAX_SEQUENCE_HEADS} programs its grid axis takes")
    elif q.device.type == "cuda" and "triton" not in unsupported:
        try:
            from ..kernels.attention_settings import switch_off_reason
        except ImportError:  # no triton: dispatch already says so
            return unsupported
        needs_backward = _tracing.needs_grad(q, k, v)
        is_fp32 = q.dtype == torch.float32
        tf32 = is_fp32 and dot_precision(q.dtype) == "tf32"  # what the launch will take
        reason = switch_off_reason(q.shape[-1], is_fp32, dropout_p > 0, needs_backward,
                                   arch=tile_arch(q.device), tf32=tf32)
        if reason is not None:
            unsupported["triton"] = reason
    return unsupported


def _fits_the_triton_grid(sequence_heads):
    # A dynamic size under torch.compile / torch.export is taken to fit: triton stays the choice
    # there (the cuda path is far slower), and a launch of more pairs fails loudly.
    return _tracing.size_at_most(sequence_heads, TRITON_MAX_SEQUENCE_HEADS, unknown=True)


def triton_head_dim_reason(head_dim):
    return (f"head dim {head_dim} is not one of the triton kernels' head dims {TRITON_HEAD_DIMS} "
            "(the cuda and torch backends take any head dim)")


def _decode_rows(op, q, max_seqlen_q):
    """Query rows B * H * Sq of a dense call with few queries (KV-cache decoding), else None: the
    size the automatic choice's decode order goes by (fastattn._dispatch.AUTO_ORDER_UP_TO_SIZE)."""
    if op != OP or not _tracing.size_at_most(max_seqlen_q, DECODE_QUERIES, unknown=False):
        return None
    return q.shape[0] * q.shape[1] * max_seqlen_q


def _run(op, q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
         causal, scale, dropout_p, backend):
    sequences = q.shape[0] if cu_seqlens_q is None else cu_seqlens_q.shape[0] - 1
    name = resolve_backend(op, q.device, backend,
                           _unsupported_backends(q, k, v, dropout_p, sequences),
                           size=_decode_rows(op, q, max_seqlen_q), inputs=(q, k, v))
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    dropout_p = float(dropout_p)
    if (name == "torch" and dropout_p == 0.0 and not _tracing.needs_grad(q, k, v)
            and _tracing.plain_eager(q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k)):
        return _backend_module(name).attention_inference(
            q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
            causal, scale)
    q, k, v = (_checks.last_dim_contiguous(t) for t in (q, k, v))
    out, _saved = attention_fwd(q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k,
                                max_seqlen_q, max_seqlen_k, causal, scale, dropout_p,
                                draw_dropout_seed(dropout_p), name)
    return out


def _grouped_query_rows(q, k, dropout_p):
    """(heads, rows) to run a decoding step with grouped KV heads as, or None.

    One query per head (Sq = 1, KV-cache decoding) where H / Hkv query heads share each KV head
    (MQA, GQA): the heads of a group can be query rows of one head instead, q [B, H, 1, D] seen as
    [B, heads, rows, D] with rows heads of the group each (at most the decode tile's 16 rows), so
    that one program reads its KV head once for all of them, where one program a query head read
    it once per head (a multi-query model of 12 heads: 12 times). The output is the same: a row's
    math does not depend on the rows beside it, and a single query hides no key causally (it is
    bottom-right aligned, the last of the keys), so the packed call runs without `causal`. Not
    with dropout: its stream is drawn per (head, query)."""
    heads, kv_heads = q.shape[1], k.shape[1]
    if type(q.shape[2]) is not int or q.shape[2] != 1 or kv_heads == heads or dropout_p != 0.0:
        return None  # (a symbolic Sq under torch.compile or export: no guard on it)
    group = heads // kv_heads
    # The largest divisor of the group that fits the decode tile, searched from the top: a group
    # of at most 16 heads is its own answer at the first try (this runs on every decoding step).
    rows = next(r for r in range(min(group, DECODE_QUERIES), 0, -1) if group % r == 0)
    return heads // rows, rows


def attention(q, k, v, *, causal=False, key_padding_mask=None, scale=None, dropout_p=0.0,
              backend=None):
    """softmax(q k^T * scale + mask) @ v, with dropout on the probabilities.

    q [B, H, Sq, D], k/v [B, Hkv, Sk, D] (Hkv divides H: query head h reads KV head h // (H / Hkv)).
    causal: query i sees keys j <= i + Sk - Sq (bottom-right aligned). key_padding_mask: bool [B, Sk],
    True = a real token, any pattern. A query that sees no key returns zeros. scale=None: 1/sqrt(D).
    """
    if _autocast.enabled(q):  # autocast's lower precision, as torch's SDPA under autocast
        return _autocast.call(attention, _autocast.LOWER_PRECISION, q, k, v, causal=causal,
                              key_padding_mask=key_padding_mask, scale=scale,
                              dropout_p=dropout_p, backend=backend)
    _check_attention_arguments(q, k, v, causal, key_padding_mask, scale, dropout_p)
    grouped = _grouped_query_rows(q, k, dropout_p)
    if grouped is not None:
        heads, rows = grouped
        packed = q.reshape(q.shape[0], heads, rows, q.shape[3])
        out = _run(OP, packed, k, v, key_padding_mask, None, None, rows, k.shape[2], False, scale,
                   dropout_p, backend)
        return out.reshape(q.shape)
    return _run(OP, q, k, v, key_padding_mask, None, None, q.shape[2], k.shape[2], causal, scale,
                dropout_p, backend)


def attention_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, *,
                     causal=False, scale=None, dropout_p=0.0, backend=None):
    """Attention over packed sequences: q [Tq, H, D], k/v [Tk, Hkv, D]; sequence b holds query tokens
    cu_seqlens_q[b]:cu_seqlens_q[b+1] and key tokens cu_seqlens_k[b]:cu_seqlens_k[b+1] (int32
    [B + 1]); max_seqlen_q/k bound the lengths. Causal is bottom-right aligned per sequence.
    """
    if _autocast.enabled(q):
        return _autocast.call(attention_varlen, _autocast.LOWER_PRECISION, q, k, v, cu_seqlens_q,
                              cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal=causal,
                              scale=scale, dropout_p=dropout_p, backend=backend)
    _check_varlen_arguments(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                            causal, scale, dropout_p)
    # The triton and cuda kernels index cu_seqlens as a plain array: a strided view (every other
    # entry of a larger tensor, say) would be read past its values. contiguous() returns a
    # contiguous tensor itself, so the facts remembered on it stay.
    cu_seqlens_q, cu_seqlens_k = cu_seqlens_q.contiguous(), cu_seqlens_k.contiguous()
    return _run(OP_VARLEN, q, k, v, None, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                causal, scale, dropout_p, backend)
