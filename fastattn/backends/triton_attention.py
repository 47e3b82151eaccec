"""Host side of the Triton attention kernels: tile choice, grids, output buffers, the decode split.

Saved for the backward (SAVED_SOFTMAX = "lse"): the float32 log-sum-exp per query row, laid out as
fastattn.backends._attention_layout describes.
"""

import torch

from .. import _alloc, _tensor_memo
from .._rng import dropout_scale
from ..kernels import attention_settings as settings
from ..kernels.attention_bwd import (
    attention_bwd_delta_kernel,
    attention_bwd_dkdv_kernel,
    attention_bwd_dq_kernel,
)
from ..kernels.attention_fwd import attention_fwd_kernel
from ..kernels.attention_split_combine import attention_split_combine_kernel
from ..kernels.host_math import ceil_div
from . import _attention_layout as layout
from ._device import multiprocessor_count, tile_arch

SAVED_SOFTMAX = "lse"

# Programs one SM keeps resident in the forward (for the decode split); the interpreter on CPU
# pretends to a small GPU so that the split path runs in the interpret tier.
PROGRAMS_PER_SM = 2
INTERPRETER_SMS = 4


def saved_softmax_like(q, k, cu_seqlens_q, max_seqlen_q, max_seqlen_k):
    return q.new_empty(layout.lse_shape(q, cu_seqlens_q is not None), dtype=torch.float32)


def _program_slots(device):
    if device.type != "cuda":
        return INTERPRETER_SMS * PROGRAMS_PER_SM
    return multiprocessor_count(device) * PROGRAMS_PER_SM


def _common_arguments(q, key_padding_mask, cu_seqlens_q, cu_seqlens_k):
    """(KEY_MASK, KEY_BOUNDS, BATCH_ORDER, CU_SEQLENS_Q, CU_SEQLENS_K, stride_mask_b); absent ones
    point at q (never read: the kernel's constexpr flags switch those loads off).

    One mask or cu_seqlens serves every layer of a model, forward and backward: what is derived
    from it on the device (key bounds, the longest-first batch order: a few small launches each)
    is computed once per tensor, not once per call."""
    mask, bounds, order, stride_mask = q, q, q, 0
    if key_padding_mask is not None:
        mask = key_padding_mask.contiguous().view(torch.uint8)
        bounds = _tensor_memo.remembered(key_padding_mask, "_fastattn_key_bounds_device",
                                         layout.key_bounds)
        order = _tensor_memo.remembered(
            key_padding_mask, "_fastattn_batch_order_device",
            lambda _: layout.longest_first(bounds[:, 1] - bounds[:, 0]))
        stride_mask = mask.stride(0)
    elif cu_seqlens_k is not None:
        order = _tensor_memo.remembered(cu_seqlens_k, "_fastattn_batch_order_device",
                                        lambda cu: layout.longest_first(cu[1:] - cu[:-1]))
    cu_q = cu_seqlens_q if cu_seqlens_q is not None else q
    cu_k = cu_seqlens_k if cu_seqlens_k is not None else q
    return mask, bounds, order, cu_q, cu_k, stride_mask


def _rows_aligned(x):
    """x, or a contiguous copy when one of its strides is not a multiple of 16 elements. A launch
    specialises each stride on that; the compile tier checks the kernels built for 16-aligned
    strides (vector loads), which every contiguous layout of the supported head dims has."""
    if all(stride % 16 == 0 for stride in x.stride()[:-1]):
        return x
    return x.contiguous()


def _dropout_arguments(dropout_p, seed):
    return float(dropout_p), dropout_scale(dropout_p), 0 if seed is None else int(seed)


def _flags(problem, causal, key_padding_mask, seed, dtype):
    # HEAD_DIM is compile-time so that the kernels' column masks keep vectorised loads.
    return dict(CAUSAL=bool(causal), HAS_KEY_MASK=key_padding_mask is not None,
                VARLEN=problem.varlen, HAS_DROPOUT=seed is not None,
                DOT_PRECISION=layout.dot_precision(dtype), HEAD_DIM=problem.head_dim)


def attention_fwd(q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                  max_seqlen_k, causal, scale, dropout_p, seed):
    q, k, v = (_rows_aligned(t) for t in (q, k, v))
    problem = layout.describe(q, k, cu_seqlens_q, max_seqlen_q, max_seqlen_k)
    out = _alloc.empty(q.shape, q)
    lse = _alloc.empty(layout.lse_shape(q, problem.varlen), q, torch.float32)
    if q.numel() == 0 or problem.seqlen_q == 0:
        return out, lse
    is_fp32 = q.dtype == torch.float32
    dropout = seed is not None  # = the kernel's HAS_DROPOUT
    decode = settings.uses_decode_tiles(problem.seqlen_q)
    tiles = (settings.decode_tiles(problem.head_dim, is_fp32, dropout) if decode
             else settings.forward_tiles(problem.head_dim, tile_arch(q.device), is_fp32, dropout))
    flags = _flags(problem, causal, key_padding_mask, seed, q.dtype)
    block_d = settings.head_block(problem.head_dim)
    query_blocks = ceil_div(problem.seqlen_q, tiles.block_m)
    key_span = ceil_div(max(problem.seqlen_k, 1), tiles.block_n) * tiles.block_n
    splits, keys_per_split = 1, key_span
    if decode:
        splits, keys_per_split = settings.key_splits(
            query_blocks * problem.batch * problem.heads, problem.seqlen_k, tiles.block_n,
            _program_slots(q.device))
    if splits > 1:
        out_target = _alloc.empty((splits,) + tuple(q.shape), q, torch.float32)
        lse_target = _alloc.empty((splits,) + tuple(lse.shape), q, torch.float32)
        split_strides = (out_target.stride(0), lse_target.stride(0))
        out_view, lse_view = out_target[0], lse_target[0]
    else:
        out_target, lse_target, split_strides, out_view, lse_view = out, lse, (0, 0), out, lse
    mask, bounds, order, cu_q, cu_k, stride_mask = _common_arguments(
        q, key_padding_mask, cu_seqlens_q, cu_seqlens_k)
    grid = (query_blocks, problem.batch * problem.heads, splits)
    attention_fwd_kernel[grid](
        q, k, v, out_target, lse_target, mask, bounds, order, cu_q, cu_k,
        *layout.seq_strides(q, problem.varlen), *layout.seq_strides(k, problem.varlen),
        *layout.seq_strides(v, problem.varlen),
        split_strides[0], *layout.seq_strides(out_view, problem.varlen),
        split_strides[1], *layout.lse_strides(lse_view, problem.varlen), stride_mask,
        problem.heads, problem.heads // problem.kv_heads, problem.seqlen_q, problem.seqlen_k,
        keys_per_split, scale * 1.4426950408889634,
        *_dropout_arguments(dropout_p, seed), **flags,
        BLOCK_M=tiles.block_m, BLOCK_N=tiles.block_n, BLOCK_D=block_d,
        D_CHUNK=settings.head_chunk("decode" if decode else "forward", block_d,
                                    flags["DOT_PRECISION"]),
        num_warps=tiles.num_warps, num_stages=tiles.num_stages, maxnreg=settings.MAX_REGISTERS,
    )
    if splits > 1:
        rows = lse.numel()
        combine = settings.combine_tiles(splits, problem.head_dim)
        attention_split_combine_kernel[(ceil_div(rows, combine.block_rows),)](
            out_target, lse_target, out, lse, rows, splits, HEAD_DIM=problem.head_dim,
            BLOCK_SPLITS=combine.block_splits, BLOCK_ROWS=combine.block_rows,
            BLOCK_D=settings.head_block(problem.head_dim), num_warps=combine.num_warps,
        )
    return out, lse


def _row_deltas(out, dout, lse):
    """delta = rowsum(dO * O), float32, shaped like the log-sum-exp (same flat row order)."""
    delta = _alloc.empty(lse.shape, out, torch.float32)
    rows, head_dim = lse.numel(), out.shape[-1]
    attention_bwd_delta_kernel[(ceil_div(rows, settings.DELTA_BLOCK_ROWS),)](
        out, dout, delta, rows, head_dim,
        BLOCK_ROWS=settings.DELTA_BLOCK_ROWS, BLOCK_D=settings.head_block(head_dim),
        num_warps=settings.DELTA_WARPS,
    )
    return delta


def attention_bwd(dout, q, k, v, out, lse, key_padding_mask, cu_seqlens_q, cu_seqlens_k,
                  max_seqlen_q, max_seqlen_k, causal, scale, dropout_p, seed):
    q, k, v = (_rows_aligned(t) for t in (q, k, v))
    problem = layout.describe(q, k, cu_seqlens_q, max_seqlen_q, max_seqlen_k)
    dq, dk, dv = _alloc.empty(q.shape, q), _alloc.empty(k.shape, k), _alloc.empty(v.shape, v)
    if k.numel() == 0 or problem.seqlen_k == 0:
        dk.zero_(), dv.zero_()
    if q.numel() == 0 or problem.seqlen_q == 0:
        return dq, dk.zero_(), dv.zero_()
    dout = dout.contiguous()
    delta = _row_deltas(out, dout, lse)
    is_fp32 = q.dtype == torch.float32
    dropout = seed is not None  # = the kernels' HAS_DROPOUT
    mask, bounds, order, cu_q, cu_k, stride_mask = _common_arguments(
        q, key_padding_mask, cu_seqlens_q, cu_seqlens_k)
    tensor_strides = (*layout.seq_strides(q, problem.varlen), *layout.seq_strides(k, problem.varlen),
                      *layout.seq_strides(v, problem.varlen),
                      *layout.seq_strides(dout, problem.varlen))
    tail = (*layout.lse_strides(lse, problem.varlen), stride_mask)
    sizes = (problem.seqlen_q, problem.seqlen_k, scale, scale * 1.4426950408889634,
             *_dropout_arguments(dropout_p, seed))
    flags = _flags(problem, causal, key_padding_mask, seed, q.dtype)
    block_d = settings.head_block(problem.head_dim)
    group = problem.heads // problem.kv_heads
    arch = tile_arch(q.device)

    if problem.seqlen_k > 0:
        atomic_tiles = None
        if not torch.are_deterministic_algorithms_enabled():
            atomic_tiles = settings.backward_atomic_dq_tiles(problem.head_dim, arch, is_fp32,
                                                             dropout, causal)
        tiles = atomic_tiles or settings.backward_dkdv_tiles(problem.head_dim, arch, is_fp32,
                                                             dropout)
        # The float32 dQ that the atomic form adds into (float32 inputs: dq itself); without it
        # the kernel never reads the pointer.
        dq_accumulator = dk
        if atomic_tiles is not None:
            dq_accumulator = dq.zero_() if is_fp32 else torch.zeros_like(dq, dtype=torch.float32)
        grid = (ceil_div(problem.seqlen_k, tiles.block_n), problem.batch * problem.kv_heads)
        separate = settings.dkdv_separate_dv(problem.head_dim, is_fp32, dropout,
                                             flags["DOT_PRECISION"])
        # (WANT_DK, WANT_DV) of each launch: dV and dK apart where both accumulators would spill.
        for want_dk, want_dv in ((False, True), (True, False)) if separate else ((True, True),):
            attention_bwd_dkdv_kernel[grid](
                q, k, v, dout, lse, delta, dk, dv, dq_accumulator, mask, bounds, order, cu_q, cu_k,
                *tensor_strides, *layout.seq_strides(dk, problem.varlen),
                *layout.seq_strides(dv, problem.varlen),
                *layout.seq_strides(dq_accumulator, problem.varlen), *tail,
                problem.heads, problem.kv_heads, group, *sizes, **flags,
                KEYS_AS_ROWS=settings.dkdv_keys_as_rows(problem.head_dim, arch, is_fp32, dropout),
                ATOMIC_DQ=atomic_tiles is not None, WANT_DK=want_dk, WANT_DV=want_dv,
                BLOCK_M=tiles.block_m, BLOCK_N=tiles.block_n, BLOCK_D=block_d,
                D_CHUNK=settings.head_chunk("backward_dkdv", block_d, flags["DOT_PRECISION"]),
                num_warps=tiles.num_warps, num_stages=tiles.num_stages,
                maxnreg=settings.MAX_REGISTERS,
            )
        if atomic_tiles is not None:
            return (dq if is_fp32 else dq.copy_(dq_accumulator)), dk, dv
    tiles = settings.backward_dq_tiles(problem.head_dim, arch, is_fp32, dropout)
    grid = (ceil_div(problem.seqlen_q, tiles.block_m), problem.batch * problem.heads)
    attention_bwd_dq_kernel[grid](
        q, k, v, dout, lse, delta, dq, mask, bounds, order, cu_q, cu_k, *tensor_strides,
        *layout.seq_strides(dq, problem.varlen), *tail,
        problem.heads, group, *sizes, **flags,
        BLOCK_M=tiles.block_m, BLOCK_N=tiles.block_n, BLOCK_D=block_d,
        D_CHUNK=settings.head_chunk("backward_dq", block_d, flags["DOT_PRECISION"]),
        num_warps=tiles.num_warps, num_stages=tiles.num_stages, maxnreg=settings.MAX_REGISTERS,
    )
    return dq, dk, dv
