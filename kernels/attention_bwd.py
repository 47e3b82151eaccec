"""Fused attention backward: recomputes the probabilities from the saved log-sum-exp, tile by tile.

Three kernels:
- attention_bwd_delta_kernel: delta_i = sum_d dO_id * O_id, per query row.
- attention_bwd_dkdv_kernel: each program owns BLOCK_N keys of one KV head and walks the query
  blocks of every query head sharing that KV head (MQA/GQA), accumulating dK and dV in registers.
- attention_bwd_dq_kernel: each program owns BLOCK_M queries and walks their visible key blocks.
The dQ kernel recomputes S and dP, so the backward makes seven tile products where the gradients
need five. With ATOMIC_DQ the dK/dV kernel also adds each tile's share of dQ (dS K) to a float32
dQ with atomic adds, and the dQ kernel is not launched: five products, but the order of the adds,
and so dQ's rounding, varies from run to run (torch.use_deterministic_algorithms keeps the dQ
kernel). FlashAttention-2 and -3 accumulate dQ the same way.

With P = softmax(S), Z the dropout keep mask and c = 1/(1-p): O = (P*Z*c) V, so
dV = (P*Z*c)^T dO, dP = (dO V^T)*Z*c, dS = P * (dP - delta), dQ = scale dS K, dK = scale dS^T Q.
Block skipping and masks as in the forward (kernels.attention_tiles).
"""

import triton
import triton.language as tl

from .attention_tiles import (
    LOG2E,
    add_rows_atomically,
    dot_over_head_dim,
    dropout_keep,
    dropout_row_base,
    key_block_range,
    load_rows,
    program_batch,
    program_sequence,
    query_block_start,
    query_block_range,
    sequence_base,
    store_rows,
    visible_keys,
)


@triton.jit
def attention_bwd_delta_kernel(OUT, DOUT, DELTA, n_rows, head_dim,
                               BLOCK_ROWS: tl.constexpr, BLOCK_D: tl.constexpr):
    """Rows are flat: OUT and DOUT contiguous [rows, head_dim], DELTA [rows] float32."""
    rows = tl.program_id(0).to(tl.int64) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)
    offs_d = tl.arange(0, BLOCK_D)
    mask = (rows[:, None] < n_rows) & (offs_d[None, :] < head_dim)
    tile = rows[:, None] * head_dim + offs_d[None, :]
    o = tl.load(OUT + tile, mask=mask, other=0.0).to(tl.float32)
    do = tl.load(DOUT + tile, mask=mask, other=0.0).to(tl.float32)
    tl.store(DELTA + rows, tl.sum(o * do, 1), mask=rows < n_rows)


@triton.jit
def _load_row_stats(LSE_SEQ, DELTA_SEQ, offs_m, stride_s, q_len):
    """(lse in log2 units, delta) of query rows; a row that sees no key (lse -inf) and a row past
    the sequence get lse +inf, so every probability recomputed for them is exactly 0."""
    in_seq = offs_m < q_len
    lse = tl.load(LSE_SEQ + offs_m * stride_s, mask=in_seq, other=float("-inf"))
    lse_log2 = tl.where(lse == float("-inf"), float("inf"), lse * LOG2E)
    delta = tl.load(DELTA_SEQ + offs_m * stride_s, mask=in_seq, other=0.0)
    return lse_log2, delta


@triton.jit
def _probs_and_score_grads(s_a, s_b, dp_a, dp_b, S_A, DP_A, a_rows, stride_s_a, stride_dp_a, a_len,
                           S_B, DP_B, b_rows, stride_s_b, stride_dp_b, b_len,
                           lse_log2, delta, m2d, n2d, key_end, causal_shift,
                           KEY_MASK_ROW, qk_scale_log2, seed, drop_rows, start_n, dropout_p,
                           dropout_scale, APPLY_BOUNDS: tl.constexpr, CAUSAL: tl.constexpr,
                           HAS_KEY_MASK: tl.constexpr, HAS_DROPOUT: tl.constexpr,
                           DOT_PRECISION: tl.constexpr, BLOCK_N: tl.constexpr,
                           KEYS_AS_ROWS: tl.constexpr, HEAD_DIM: tl.constexpr,
                           BLOCK_D: tl.constexpr, D_CHUNK: tl.constexpr):
    """(P*Z*c, dS) of one tile, [BLOCK_M, BLOCK_N] from (s_a, s_b, dp_a, dp_b) = (q, k, dO, V) or,
    with KEYS_AS_ROWS, their transposes from (k, q, V, dO). lse_log2, delta, m2d and n2d are
    broadcast along the tile's axes the same way (see visible_keys); drop_rows (dropout_row_base,
    [BLOCK_M]) and start_n, the tile's first key, place it in the dropout stream. Where the
    operands come from (S_A and DP_A at a_rows below a_len, S_B and DP_B at b_rows below b_len):
    for the head-dim slices of dot_over_head_dim."""
    # The saved log-sum-exp gives the probabilities directly, so hidden keys are zeroed after the
    # exponent: scale and shift then fuse into one FFMA a score (a select between them split it
    # into FMUL + FADD, 16 more of the 255 instructions of the sm_90 D=128 dQ loop).
    s = dot_over_head_dim(s_a, s_b, S_A, a_rows, stride_s_a, a_len, S_B, b_rows, stride_s_b, b_len,
                          DOT_PRECISION, HEAD_DIM, BLOCK_D, D_CHUNK)
    p = tl.math.exp2(s * qk_scale_log2 - lse_log2)
    visible = visible_keys(m2d, n2d, key_end, causal_shift, KEY_MASK_ROW, APPLY_BOUNDS, CAUSAL,
                           HAS_KEY_MASK)
    if visible is not None:
        p = tl.where(visible, p, 0.0)
    dp = dot_over_head_dim(dp_a, dp_b, DP_A, a_rows, stride_dp_a, a_len, DP_B, b_rows, stride_dp_b,
                           b_len, DOT_PRECISION, HEAD_DIM, BLOCK_D, D_CHUNK)
    p_dropped = p
    if HAS_DROPOUT:
        keep = dropout_keep(seed, drop_rows, start_n, dropout_p, BLOCK_N, KEYS_AS_ROWS)
        p_dropped = tl.where(keep, p * dropout_scale, 0.0)
        dp = tl.where(keep, dp * dropout_scale, 0.0)
    return p_dropped, p * (dp - delta)


@triton.jit
def _dkdv_query_block(dk, dv, k, v, K_SEQ, V_SEQ, Q_SEQ, DO_SEQ, LSE_SEQ, DELTA_SEQ, DQ_SEQ,
                      KEY_MASK_ROW, start_m, start_n, offs_n, stride_ks, stride_vs, stride_qs,
                      stride_dos, stride_lse_s, stride_dqs, q_len, k_len, key_end, causal_shift,
                      scale, qk_scale_log2, seed, batch, head, n_heads, dropout_seqlen_q,
                      dropout_seqlen_k, dropout_p, dropout_scale,
                      APPLY_BOUNDS: tl.constexpr, CAUSAL: tl.constexpr, HAS_KEY_MASK: tl.constexpr,
                      HAS_DROPOUT: tl.constexpr, DOT_PRECISION: tl.constexpr,
                      KEYS_AS_ROWS: tl.constexpr, ATOMIC_DQ: tl.constexpr, WANT_DK: tl.constexpr,
                      WANT_DV: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                      HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, D_CHUNK: tl.constexpr):
    """WANT_DK, WANT_DV: which of dk and dv to accumulate (the other comes back as it came; what
    only it needs, dP and dS or the dV product, is never computed).
    KEYS_AS_ROWS: the tiles are transposed, [BLOCK_N keys, BLOCK_M queries] (as in Triton's
    fused-attention tutorial), so that every product has the owned key block as its M, wide enough
    for wgmma on sm_90. Elsewhere the [BLOCK_M, BLOCK_N] tiles need fewer registers (mma.sync).
    ATOMIC_DQ: also adds scale * dS K of this tile to DQ_SEQ's float32 rows (dQ^T = K^T dS^T on
    transposed tiles: M = HEAD_DIM there, wgmma too)."""
    offs_m = start_m + tl.arange(0, BLOCK_M)
    q = load_rows(Q_SEQ, offs_m, stride_qs, q_len, HEAD_DIM, BLOCK_D)
    do = load_rows(DO_SEQ, offs_m, stride_dos, q_len, HEAD_DIM, BLOCK_D)
    lse_log2, delta = _load_row_stats(LSE_SEQ, DELTA_SEQ, offs_m, stride_lse_s, q_len)
    drop_rows = offs_m.to(tl.int64)
    if HAS_DROPOUT:
        drop_rows = dropout_row_base(batch, head, n_heads, offs_m, dropout_seqlen_q, dropout_seqlen_k)
    if KEYS_AS_ROWS:
        p_dropped_t, ds_t = _probs_and_score_grads(
            k, q, v, do, K_SEQ, V_SEQ, offs_n, stride_ks, stride_vs, k_len,
            Q_SEQ, DO_SEQ, offs_m, stride_qs, stride_dos, q_len,
            lse_log2[None, :], delta[None, :], offs_m[None, :], offs_n[:, None],
            key_end, causal_shift, KEY_MASK_ROW, qk_scale_log2, seed, drop_rows, start_n,
            dropout_p, dropout_scale, APPLY_BOUNDS, CAUSAL, HAS_KEY_MASK, HAS_DROPOUT,
            DOT_PRECISION, BLOCK_N, True, HEAD_DIM, BLOCK_D, D_CHUNK)
        p_dropped_t, ds_t = p_dropped_t.to(do.dtype), ds_t.to(q.dtype)
    else:
        p_dropped, ds = _probs_and_score_grads(
            q, k, do, v, Q_SEQ, DO_SEQ, offs_m, stride_qs, stride_dos, q_len,
            K_SEQ, V_SEQ, offs_n, stride_ks, stride_vs, k_len,
            lse_log2[:, None], delta[:, None], offs_m[:, None], offs_n[None, :],
            key_end, causal_shift, KEY_MASK_ROW, qk_scale_log2, seed, drop_rows, start_n,
            dropout_p, dropout_scale, APPLY_BOUNDS, CAUSAL, HAS_KEY_MASK, HAS_DROPOUT,
            DOT_PRECISION, BLOCK_N, False, HEAD_DIM, BLOCK_D, D_CHUNK)
        # Transposed after the cast to 16 bits: half the bytes through shared memory.
        p_dropped_t, ds_t = tl.trans(p_dropped.to(do.dtype)), tl.trans(ds.to(q.dtype))
    if WANT_DV:
        dv = tl.dot(p_dropped_t, do, dv, input_precision=DOT_PRECISION)
    if WANT_DK:
        dk = tl.dot(ds_t, q, dk, input_precision=DOT_PRECISION)
    if ATOMIC_DQ and WANT_DK:  # last: P is dead by now, fewer registers live across the product
        if KEYS_AS_ROWS:
            dq_t = tl.dot(tl.trans(k), ds_t, input_precision=DOT_PRECISION)
            add_rows_atomically(DQ_SEQ, offs_m.to(tl.int64), stride_dqs, q_len, dq_t * scale, True,
                                HEAD_DIM, BLOCK_D)
        else:
            dq = tl.dot(tl.trans(ds_t), k, input_precision=DOT_PRECISION)
            add_rows_atomically(DQ_SEQ, offs_m.to(tl.int64), stride_dqs, q_len, dq * scale, False,
                                HEAD_DIM, BLOCK_D)
    return dk, dv


@triton.jit
def attention_bwd_dkdv_kernel(
    Q, K, V, DOUT, LSE, DELTA, DK, DV, DQ_ACCUMULATOR, KEY_MASK, KEY_BOUNDS, BATCH_ORDER,
    CU_SEQLENS_Q, CU_SEQLENS_K,
    stride_qb, stride_qh, stride_qs, stride_kb, stride_kh, stride_ks, stride_vb, stride_vh, stride_vs,
    stride_dob, stride_doh, stride_dos, stride_dkb, stride_dkh, stride_dks,
    stride_dvb, stride_dvh, stride_dvs, stride_dqab, stride_dqah, stride_dqas,
    stride_lse_b, stride_lse_h, stride_lse_s, stride_mask_b,
    n_heads, n_kv_heads, kv_group, seqlen_q, seqlen_k, scale, qk_scale_log2,
    dropout_p, dropout_scale, seed,
    CAUSAL: tl.constexpr, HAS_KEY_MASK: tl.constexpr, VARLEN: tl.constexpr,
    HAS_DROPOUT: tl.constexpr, DOT_PRECISION: tl.constexpr, KEYS_AS_ROWS: tl.constexpr,
    ATOMIC_DQ: tl.constexpr, WANT_DK: tl.constexpr, WANT_DV: tl.constexpr, HEAD_DIM: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, D_CHUNK: tl.constexpr,
):
    """DQ_ACCUMULATOR (float32, zeroed, with its strides) is used only with ATOMIC_DQ (and
    WANT_DK). WANT_DK, WANT_DV: which gradients this launch computes and writes; both, or one per
    launch for the 3-pass float32 tiles that spill with two [BLOCK_N, BLOCK_D] float32
    accumulators live (kernels.attention_settings.dkdv_separate_dv), each launch recomputing S."""
    start_n = tl.program_id(0) * BLOCK_N
    batch = program_batch(tl.program_id(1) // n_kv_heads, BATCH_ORDER, HAS_KEY_MASK, VARLEN)
    kv_head = tl.program_id(1) % n_kv_heads
    q_start64, q_len, k_start64, k_len, key_lo, key_end, causal_shift, idle = program_sequence(
        start_n, batch, CU_SEQLENS_Q, CU_SEQLENS_K, KEY_BOUNDS, seqlen_q, seqlen_k,
        VARLEN, HAS_KEY_MASK, True)
    if idle:
        return
    batch64 = batch.to(tl.int64)
    kv_head64 = kv_head.to(tl.int64)
    offs_n = start_n + tl.arange(0, BLOCK_N)
    K_SEQ = sequence_base(K, batch64, kv_head64, k_start64, stride_kb, stride_kh, stride_ks)
    V_SEQ = sequence_base(V, batch64, kv_head64, k_start64, stride_vb, stride_vh, stride_vs)
    k = load_rows(K_SEQ, offs_n, stride_ks, k_len, HEAD_DIM, BLOCK_D)
    v = load_rows(V_SEQ, offs_n, stride_vs, k_len, HEAD_DIM, BLOCK_D)
    KEY_MASK_ROW = KEY_MASK + batch64 * stride_mask_b
    lo, mid, hi = query_block_range(start_n, q_len, key_lo, key_end, causal_shift,
                                    CAUSAL, BLOCK_M, BLOCK_N)
    dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    for member in range(0, kv_group):
        head = kv_head * kv_group + member
        head64 = kv_head64 * kv_group + member
        Q_SEQ = sequence_base(Q, batch64, head64, q_start64, stride_qb, stride_qh, stride_qs)
        DO_SEQ = sequence_base(DOUT, batch64, head64, q_start64, stride_dob, stride_doh, stride_dos)
        LSE_SEQ = sequence_base(LSE, batch64, head64, q_start64, stride_lse_b, stride_lse_h, stride_lse_s)
        DELTA_SEQ = sequence_base(DELTA, batch64, head64, q_start64, stride_lse_b, stride_lse_h,
                                  stride_lse_s)
        DQ_SEQ = sequence_base(DQ_ACCUMULATOR, batch64, head64, q_start64, stride_dqab, stride_dqah,
                               stride_dqas)
        # A launch of one gradient walks every block with the bounds mask, in one loop: the
        # compiler keeps the loop-invariant K and V slices of each loop in shared memory, and two
        # loops' copies took 139 KB at D=128 (sm_80 tables must stay under 99 KB).
        for start_m in range(lo, mid if WANT_DK and WANT_DV else hi, BLOCK_M):
            dk, dv = _dkdv_query_block(
                dk, dv, k, v, K_SEQ, V_SEQ, Q_SEQ, DO_SEQ, LSE_SEQ, DELTA_SEQ, DQ_SEQ, KEY_MASK_ROW,
                start_m, start_n, offs_n, stride_ks, stride_vs, stride_qs, stride_dos, stride_lse_s,
                stride_dqas, q_len, k_len, key_end, causal_shift, scale, qk_scale_log2, seed, batch,
                head, n_heads, seqlen_q, seqlen_k, dropout_p, dropout_scale, True, CAUSAL,
                HAS_KEY_MASK, HAS_DROPOUT, DOT_PRECISION, KEYS_AS_ROWS, ATOMIC_DQ, WANT_DK, WANT_DV,
                BLOCK_M, BLOCK_N, HEAD_DIM, BLOCK_D, D_CHUNK)
        if WANT_DK and WANT_DV:
            for start_m in range(mid, hi, BLOCK_M):
                dk, dv = _dkdv_query_block(
                    dk, dv, k, v, K_SEQ, V_SEQ, Q_SEQ, DO_SEQ, LSE_SEQ, DELTA_SEQ, DQ_SEQ,
                    KEY_MASK_ROW, start_m, start_n, offs_n, stride_ks, stride_vs, stride_qs,
                    stride_dos, stride_lse_s, stride_dqas, q_len, k_len, key_end, causal_shift,
                    scale, qk_scale_log2, seed, batch, head, n_heads, seqlen_q, seqlen_k, dropout_p,
                    dropout_scale, False, CAUSAL, HAS_KEY_MASK, HAS_DROPOUT, DOT_PRECISION,
                    KEYS_AS_ROWS, ATOMIC_DQ, WANT_DK, WANT_DV, BLOCK_M, BLOCK_N, HEAD_DIM, BLOCK_D,
                    D_CHUNK)
    rows = offs_n.to(tl.int64)
    if WANT_DK:
        store_rows(
            sequence_base(DK, batch64, kv_head64, k_start64, stride_dkb, stride_dkh, stride_dks),
            rows, stride_dks, k_len, dk * scale, HEAD_DIM, BLOCK_D)
    if WANT_DV:
        store_rows(
            sequence_base(DV, batch64, kv_head64, k_start64, stride_dvb, stride_dvh, stride_dvs),
            rows, stride_dvs, k_len, dv, HEAD_DIM, BLOCK_D)


@triton.jit
def attention_bwd_dq_kernel(
    Q, K, V, DOUT, LSE, DELTA, DQ, KEY_MASK, KEY_BOUNDS, BATCH_ORDER, CU_SEQLENS_Q,
    CU_SEQLENS_K,
    stride_qb, stride_qh, stride_qs, stride_kb, stride_kh, stride_ks, stride_vb, stride_vh, stride_vs,
    stride_dob, stride_doh, stride_dos, stride_dqb, stride_dqh, stride_dqs,
    stride_lse_b, stride_lse_h, stride_lse_s, stride_mask_b,
    n_heads, kv_group, seqlen_q, seqlen_k, scale, qk_scale_log2,
    dropout_p, dropout_scale, seed,
    CAUSAL: tl.constexpr, HAS_KEY_MASK: tl.constexpr, VARLEN: tl.constexpr,
    HAS_DROPOUT: tl.constexpr, DOT_PRECISION: tl.constexpr,
    HEAD_DIM: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
    D_CHUNK: tl.constexpr,
):
    start_m = query_block_start(BLOCK_M, CAUSAL, VARLEN)
    batch = program_batch(tl.program_id(1) // n_heads, BATCH_ORDER, HAS_KEY_MASK, VARLEN)
    head = tl.program_id(1) % n_heads
    q_start64, q_len, k_start64, k_len, key_lo, key_end, causal_shift, idle = program_sequence(
        start_m, batch, CU_SEQLENS_Q, CU_SEQLENS_K, KEY_BOUNDS, seqlen_q, seqlen_k,
        VARLEN, HAS_KEY_MASK, False)
    if idle:
        return
    batch64 = batch.to(tl.int64)
    head64 = head.to(tl.int64)
    kv_head64 = (head // kv_group).to(tl.int64)
    offs_m = start_m + tl.arange(0, BLOCK_M)
    Q_SEQ = sequence_base(Q, batch64, head64, q_start64, stride_qb, stride_qh, stride_qs)
    DO_SEQ = sequence_base(DOUT, batch64, head64, q_start64, stride_dob, stride_doh, stride_dos)
    q = load_rows(Q_SEQ, offs_m, stride_qs, q_len, HEAD_DIM, BLOCK_D)
    do = load_rows(DO_SEQ, offs_m, stride_dos, q_len, HEAD_DIM, BLOCK_D)
    lse_log2, delta = _load_row_stats(
        sequence_base(LSE, batch64, head64, q_start64, stride_lse_b, stride_lse_h, stride_lse_s),
        sequence_base(DELTA, batch64, head64, q_start64, stride_lse_b, stride_lse_h, stride_lse_s),
        offs_m, stride_lse_s, q_len)
    K_SEQ = sequence_base(K, batch64, kv_head64, k_start64, stride_kb, stride_kh, stride_ks)
    V_SEQ = sequence_base(V, batch64, kv_head64, k_start64, stride_vb, stride_vh, stride_vs)
    KEY_MASK_ROW = KEY_MASK + batch64 * stride_mask_b
    lo, mid, hi = key_block_range(start_m, q_len, key_lo, key_end, causal_shift, 0, key_end,
                                  CAUSAL, BLOCK_M, BLOCK_N)
    drop_rows = offs_m.to(tl.int64)
    if HAS_DROPOUT:
        drop_rows = dropout_row_base(batch, head, n_heads, offs_m, seqlen_q, seqlen_k)
    dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        k = load_rows(K_SEQ, offs_n, stride_ks, key_end, HEAD_DIM, BLOCK_D)
        v = load_rows(V_SEQ, offs_n, stride_vs, key_end, HEAD_DIM, BLOCK_D)
        # One loop with the bounds mask on every block: the dQ pass is the cheaper half of the
        # backward, and splitting it in two would double its code size.
        _, ds = _probs_and_score_grads(
            q, k, do, v, Q_SEQ, DO_SEQ, offs_m, stride_qs, stride_dos, q_len,
            K_SEQ, V_SEQ, offs_n, stride_ks, stride_vs, key_end,
            lse_log2[:, None], delta[:, None], offs_m[:, None], offs_n[None, :],
            key_end, causal_shift, KEY_MASK_ROW, qk_scale_log2, seed, drop_rows, start_n,
            dropout_p, dropout_scale, True, CAUSAL, HAS_KEY_MASK, HAS_DROPOUT, DOT_PRECISION,
            BLOCK_N, False, HEAD_DIM, BLOCK_D, D_CHUNK)
        dq = tl.dot(ds.to(k.dtype), k, dq, input_precision=DOT_PRECISION)
    store_rows(sequence_base(DQ, batch64, head64, q_start64, stride_dqb, stride_dqh, stride_dqs),
               offs_m.to(tl.int64), stride_dqs, q_len, dq * scale, HEAD_DIM, BLOCK_D)
