"""Fused attention forward (FlashAttention-2 style): each program owns BLOCK_M queries of one head
and streams the key/value blocks they can see, keeping a running max and sum (online softmax), so
the scores never reach global memory. It writes the output and the log-sum-exp per query, which
the backward uses to recompute the probabilities.

Grid: (query blocks, batch * heads, key splits). With one split a program sees all its keys and
writes the final output. The decode path (few queries, long keys, too few programs to fill the GPU)
splits the keys over programs: each writes a float32 partial output normalised over its own keys
and that split's log-sum-exp, and kernels.attention_split_combine merges them.

Masks, block skipping and the dropout stream: see kernels.attention_tiles.
"""

import triton
import triton.language as tl

from .attention_tiles import (
    LOG2E,
    dot_over_head_dim,
    dropout_keep,
    dropout_row_base,
    key_block_range,
    load_rows,
    program_batch,
    program_sequence,
    query_block_start,
    sequence_base,
    store_rows,
    visible_keys,
)


@triton.jit
def _attend_key_block(acc, row_sum, row_max, q, Q_SEQ, K_SEQ, V_SEQ, stride_qs, stride_ks,
                      stride_vs, KEY_MASK_ROW, start_n, offs_m, q_len, key_end, causal_shift,
                      qk_scale_log2, seed, drop_rows, dropout_p, dropout_scale,
                      APPLY_BOUNDS: tl.constexpr, CAUSAL: tl.constexpr, HAS_KEY_MASK: tl.constexpr,
                      HAS_DROPOUT: tl.constexpr, DOT_PRECISION: tl.constexpr, BLOCK_N: tl.constexpr,
                      HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, D_CHUNK: tl.constexpr,
                      VARLEN: tl.constexpr):
    offs_n = start_n + tl.arange(0, BLOCK_N)
    k = load_rows(K_SEQ, offs_n, stride_ks, key_end, HEAD_DIM, BLOCK_D)
    s = dot_over_head_dim(q, k, Q_SEQ, offs_m, stride_qs, q_len, K_SEQ, offs_n, stride_ks, key_end,
                          DOT_PRECISION, HEAD_DIM, BLOCK_D, D_CHUNK)
    visible = visible_keys(offs_m[:, None], offs_n[None, :], key_end, causal_shift, KEY_MASK_ROW,
                           APPLY_BOUNDS, CAUSAL, HAS_KEY_MASK)
    if visible is None and not VARLEN:
        # Every key visible: the scale stays in the exponent's argument, where it and the shift
        # fuse into one FFMA a score (sm_90 SASS of the unmasked loop: 10% fewer instructions at
        # D=64, 6% at D=128). The max commutes with the scale (scale >= 0) and is finite here.
        # Not for packed sequences: there the sm_90 D=64 tile (128x64, 4 warps) rose from 230 to
        # 255 registers and spilled 8-16 B (triton 3.8).
        new_max = tl.maximum(row_max, tl.max(s, 1) * qk_scale_log2)
        shift = new_max
        p = tl.math.exp2(s * qk_scale_log2 - shift[:, None])
    else:
        s = s * qk_scale_log2
        if visible is not None:
            # -inf before the max. (Zeroing hidden keys after the exponent instead kept the mask
            # live across it: recomputing its compares made the masked loop 28% longer.)
            s = tl.where(visible, s, float("-inf"))
        new_max = tl.maximum(row_max, tl.max(s, 1))
        # A row that has seen no key yet keeps max -inf; shifting by 0 keeps exp2 free of NaN.
        shift = tl.where(new_max == float("-inf"), 0.0, new_max)
        p = tl.math.exp2(s - shift[:, None])
    rescale = tl.math.exp2(row_max - shift)
    row_sum = row_sum * rescale + tl.sum(p, 1)
    if HAS_DROPOUT:
        # The normaliser counts every probability; only the values are dropped.
        p = tl.where(dropout_keep(seed, drop_rows, start_n, dropout_p, BLOCK_N, False),
                     p * dropout_scale, 0.0)
    v = load_rows(V_SEQ, offs_n, stride_vs, key_end, HEAD_DIM, BLOCK_D)
    acc = tl.dot(p.to(v.dtype), v, acc * rescale[:, None], input_precision=DOT_PRECISION)
    return acc, row_sum, new_max


@triton.jit
def attention_fwd_kernel(
    Q, K, V, OUT, LSE, KEY_MASK, KEY_BOUNDS, BATCH_ORDER, CU_SEQLENS_Q, CU_SEQLENS_K,
    stride_qb, stride_qh, stride_qs, stride_kb, stride_kh, stride_ks, stride_vb, stride_vh, stride_vs,
    stride_o_split, stride_ob, stride_oh, stride_os,
    stride_lse_split, stride_lse_b, stride_lse_h, stride_lse_s, stride_mask_b,
    n_heads, kv_group, seqlen_q, seqlen_k, keys_per_split,
    qk_scale_log2, dropout_p, dropout_scale, seed,
    CAUSAL: tl.constexpr, HAS_KEY_MASK: tl.constexpr, VARLEN: tl.constexpr,
    HAS_DROPOUT: tl.constexpr, DOT_PRECISION: tl.constexpr,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    D_CHUNK: tl.constexpr,
):
    start_m = query_block_start(BLOCK_M, CAUSAL, VARLEN)
    batch = program_batch(tl.program_id(1) // n_heads, BATCH_ORDER, HAS_KEY_MASK, VARLEN)
    head = tl.program_id(1) % n_heads
    split = tl.program_id(2)
    q_start64, q_len, k_start64, k_len, key_lo, key_end, causal_shift, idle = program_sequence(
        start_m, batch, CU_SEQLENS_Q, CU_SEQLENS_K, KEY_BOUNDS, seqlen_q, seqlen_k,
        VARLEN, HAS_KEY_MASK, False)
    if idle:
        return
    batch64 = batch.to(tl.int64)
    head64 = head.to(tl.int64)
    kv_head64 = (head // kv_group).to(tl.int64)
    Q_SEQ = sequence_base(Q, batch64, head64, q_start64, stride_qb, stride_qh, stride_qs)
    K_SEQ = sequence_base(K, batch64, kv_head64, k_start64, stride_kb, stride_kh, stride_ks)
    V_SEQ = sequence_base(V, batch64, kv_head64, k_start64, stride_vb, stride_vh, stride_vs)
    KEY_MASK_ROW = KEY_MASK + batch64 * stride_mask_b

    offs_m = start_m + tl.arange(0, BLOCK_M)
    q = load_rows(Q_SEQ, offs_m, stride_qs, q_len, HEAD_DIM, BLOCK_D)
    lo, mid, hi = key_block_range(start_m, q_len, key_lo, key_end, causal_shift,
                                  split * keys_per_split, (split + 1) * keys_per_split,
                                  CAUSAL, BLOCK_M, BLOCK_N)
    drop_rows = offs_m.to(tl.int64)
    if HAS_DROPOUT:
        drop_rows = dropout_row_base(batch, head, n_heads, offs_m, seqlen_q, seqlen_k)

    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    row_sum = tl.zeros([BLOCK_M], dtype=tl.float32)
    row_max = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)
    for start_n in range(lo, mid, BLOCK_N):
        acc, row_sum, row_max = _attend_key_block(
            acc, row_sum, row_max, q, Q_SEQ, K_SEQ, V_SEQ, stride_qs, stride_ks, stride_vs,
            KEY_MASK_ROW, start_n, offs_m, q_len, key_end, causal_shift, qk_scale_log2,
            seed, drop_rows, dropout_p, dropout_scale,
            False, CAUSAL, HAS_KEY_MASK, HAS_DROPOUT, DOT_PRECISION, BLOCK_N, HEAD_DIM, BLOCK_D,
            D_CHUNK, VARLEN)
    for start_n in range(mid, hi, BLOCK_N):
        acc, row_sum, row_max = _attend_key_block(
            acc, row_sum, row_max, q, Q_SEQ, K_SEQ, V_SEQ, stride_qs, stride_ks, stride_vs,
            KEY_MASK_ROW, start_n, offs_m, q_len, key_end, causal_shift, qk_scale_log2,
            seed, drop_rows, dropout_p, dropout_scale,
            True, CAUSAL, HAS_KEY_MASK, HAS_DROPOUT, DOT_PRECISION, BLOCK_N, HEAD_DIM, BLOCK_D,
            D_CHUNK, VARLEN)

    # A row that saw no key: output 0, log-sum-exp -inf.
    seen = row_sum > 0.0
    out = acc / tl.where(seen, row_sum, 1.0)[:, None]
    lse = tl.where(seen, (row_max + tl.math.log2(tl.where(seen, row_sum, 1.0))) / LOG2E,
                   float("-inf"))
    rows = offs_m.to(tl.int64)
    split64 = split.to(tl.int64)
    store_rows(sequence_base(OUT + split64 * stride_o_split, batch64, head64, q_start64,
                             stride_ob, stride_oh, stride_os),
               rows, stride_os, q_len, out, HEAD_DIM, BLOCK_D)
    LSE_SEQ = sequence_base(LSE + split64 * stride_lse_split, batch64, head64, q_start64,
                            stride_lse_b, stride_lse_h, stride_lse_s)
    tl.store(LSE_SEQ + rows * stride_lse_s, lse, mask=offs_m < q_len)
