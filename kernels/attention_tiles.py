"""Pieces shared by the attention kernels: where a sequence lies, which key (or query) blocks a
program must visit, which keys of a tile a query sees, and the dropout keep mask.

Conventions: scores are kept in log2 units (qk_scale_log2 = scale * log2(e)) so exp2 replaces exp;
the saved log-sum-exp is in natural-log units (-inf for a row that sees no key).

Which keys query i of a sequence sees: keys j < k_len (the sequence), j in [key_lo, key_hi) with
key_mask[j] true (key_padding_mask; key_lo/key_hi are the first and one past the last real key),
and, when causal, j <= i + k_len - q_len (bottom-right alignment). Blocks outside
[key_lo, key_hi) or wholly above the diagonal are never visited; only blocks that straddle an edge
(APPLY_BOUNDS) pay for the element-wise bounds mask.

Dropout: keys come in groups of eight, one Philox evaluation (tl.randint4x) a group, the 16-bit
halves of its four words (low half first) deciding the group's eight scores: score (b, h, i, j) is
kept iff half j % 2 of word (j % 8) // 2 of randint4x(seed, ((b * H + h) * Sq + i) * G + j // 8)
is >= ceil(p * 2**16) (p as float32), with G = ceil(Sk / 8), Sq, Sk the padded sequence dims
(max_seqlen_q/k for varlen) and i, j positions within the sequence:
fastattn.reference.attention_dropout_keep_mask draws the same stream. (One evaluation a score,
about 80 integer instructions, outweighed the tile's matrix products: the forward's SASS grew 3.4x
with dropout at D=64, sm_90; one a group of four still made the forward 2.8x slower than without
dropout on an H100 at GPT2's head size.)
"""

import triton
import triton.language as tl

LOG2E = tl.constexpr(1.4426950408889634)


@triton.jit
def program_sequence(start, batch, CU_SEQLENS_Q, CU_SEQLENS_K, KEY_BOUNDS, seqlen_q, seqlen_k,
                     VARLEN: tl.constexpr, HAS_KEY_MASK: tl.constexpr, OWNS_KEYS: tl.constexpr):
    """The sequence `batch` of a program whose block (of keys when OWNS_KEYS, else of queries)
    starts at `start`: (q_start64, q_len, k_start64, k_len, key_lo, key_end, causal_shift, idle).
    q_start64/k_start64: token offsets of its first query and key (0 unless varlen), int64;
    [key_lo, key_end): its range of real keys; causal_shift = k_len - q_len (bottom-right causal
    alignment); idle: the block starts past the sequence."""
    if VARLEN:
        q_start = tl.load(CU_SEQLENS_Q + batch)
        q_len = tl.load(CU_SEQLENS_Q + batch + 1) - q_start
        k_start = tl.load(CU_SEQLENS_K + batch)
        k_len = tl.load(CU_SEQLENS_K + batch + 1) - k_start
    else:
        q_start = batch * 0
        q_len = q_start + seqlen_q
        k_start = q_start
        k_len = q_start + seqlen_k
    if HAS_KEY_MASK:
        key_lo = tl.load(KEY_BOUNDS + 2 * batch)
        key_end = tl.minimum(k_len, tl.load(KEY_BOUNDS + 2 * batch + 1))
    else:
        key_lo = k_len * 0
        key_end = k_len
    if OWNS_KEYS:
        idle = start >= k_len
    else:
        idle = start >= q_len
    return (q_start.to(tl.int64), q_len, k_start.to(tl.int64), k_len, key_lo, key_end,
            k_len - q_len, idle)


@triton.jit
def program_batch(group, BATCH_ORDER, HAS_KEY_MASK: tl.constexpr, VARLEN: tl.constexpr):
    """The batch row of the programs of grid axis 1's `group` (= program_id(1) // heads). With a key
    mask or packed sequences the rows differ in length and are taken longest first:
    BATCH_ORDER[group] (int32 [B], fastattn.backends._attention_layout.longest_first). The GPU
    starts blocks in grid order, so in batch order a long sequence near the end of the batch ran
    alone while the other SMs idled; longest first, the short ones fill the last wave (BERT's
    padded batch: ~19% over the ideal in a model of the block scheduler, ~3% sorted)."""
    if HAS_KEY_MASK or VARLEN:
        return tl.load(BATCH_ORDER + group)
    return group


@triton.jit
def query_block_start(BLOCK_M: tl.constexpr, CAUSAL: tl.constexpr, VARLEN: tl.constexpr):
    """First query row of this program's block (grid axis 0 walks the query blocks). Causal: in
    reverse, so the blocks that see the most keys are launched first and the short ones fill the
    last wave (longest job first), instead of a few long blocks of the last heads running alone
    at the end while the other SMs idle. Not for varlen batches: there the sm_90 D=128 forward
    tile, at 255 registers already, spilled 8 B with the reversal (triton 3.8)."""
    block = tl.program_id(0)
    if CAUSAL and not VARLEN:
        block = tl.num_programs(0) - 1 - block
    return block * BLOCK_M


@triton.jit
def key_block_range(start_m, q_len, key_lo, key_hi, causal_shift, split_lo, split_hi,
                    CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """(lo, mid, hi) for the query block at start_m: blocks [lo, mid) are visible to every row (no
    bounds mask), blocks [mid, hi) straddle the causal diagonal or the last key. split_lo/split_hi
    (multiples of BLOCK_N) restrict the keys to one split of the decode path."""
    lo = tl.maximum(split_lo, key_lo // BLOCK_N * BLOCK_N)
    hi = tl.minimum(split_hi, key_hi)
    full_end = key_hi
    if CAUSAL:
        last_row = tl.minimum(start_m + BLOCK_M, q_len) - 1
        hi = tl.minimum(hi, last_row + causal_shift + 1)
        full_end = tl.minimum(full_end, start_m + causal_shift + 1)
    mid = lo + tl.maximum(full_end - lo, 0) // BLOCK_N * BLOCK_N
    mid = tl.minimum(mid, hi)
    return lo, mid, hi


@triton.jit
def query_block_range(start_n, q_len, key_lo, key_hi, causal_shift,
                      CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """(lo, mid, hi) of the query blocks that see the key block at start_n (the backward's dK/dV
    walk): blocks [lo, mid) straddle the causal diagonal, [mid, hi) see every key of the block.
    Empty when the key block holds no real key."""
    lo = q_len * 0
    hi = q_len
    mid = lo
    if CAUSAL:
        first_row = tl.maximum(start_n - causal_shift, 0)
        lo = first_row // BLOCK_M * BLOCK_M
        # The first row that sees the block's last key: from there on no causal mask is needed.
        full_row = tl.maximum(start_n + BLOCK_N - 1 - causal_shift, lo)
        mid = tl.minimum(lo + (full_row - lo + BLOCK_M - 1) // BLOCK_M * BLOCK_M, hi)
        mid = tl.maximum(mid, lo)
    no_real_key = (start_n >= key_hi) | (start_n + BLOCK_N <= key_lo)
    hi = tl.where(no_real_key, lo, hi)
    mid = tl.minimum(mid, hi)
    return lo, mid, hi


@triton.jit
def sequence_base(X, batch64, head64, start64, stride_b, stride_h, stride_s):
    """Where one head of one sequence starts in a [batch, head, seq, ...]-strided tensor. int64
    offsets: batch * stride can pass 2**31 elements (long KV caches)."""
    return X + batch64 * stride_b + head64 * stride_h + start64 * stride_s


@triton.jit
def _rows_mask(rows, n_rows, HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr):
    """Mask of a [len(rows), BLOCK_D] tile: rows below n_rows, columns below HEAD_DIM. The head dim is
    a compile-time constant so that the column mask is constant over runs of 16 columns (or absent
    when HEAD_DIM == BLOCK_D): Triton then keeps 16-byte vector loads and cp.async pipelining. With
    a runtime head dim every element had its own predicate, which forced scalar 2-byte loads held
    in registers and made even 64x64 tiles at D=16 spill."""
    mask = (rows < n_rows)[:, None]  # tl.load/tl.store broadcast it over the columns
    if HEAD_DIM != BLOCK_D:
        mask = mask & (tl.arange(0, BLOCK_D) < HEAD_DIM)[None, :]
    return mask


@triton.jit
def load_rows(BASE, rows, stride_row, n_rows, HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr):
    """A [len(rows), BLOCK_D] tile of a [sequence, HEAD_DIM] matrix; rows past n_rows and columns
    past HEAD_DIM read as zero."""
    offs_d = tl.arange(0, BLOCK_D)
    return tl.load(BASE + rows[:, None] * stride_row + offs_d[None, :],
                   mask=_rows_mask(rows, n_rows, HEAD_DIM, BLOCK_D), other=0.0)


@triton.jit
def _load_columns(BASE, rows, stride_row, n_rows, FIRST: tl.constexpr, WIDTH: tl.constexpr,
                  HEAD_DIM: tl.constexpr):
    """Columns [FIRST, FIRST + WIDTH) of load_rows' tile (columns past HEAD_DIM read as zero)."""
    offs_d = FIRST + tl.arange(0, WIDTH)
    mask = (rows < n_rows)[:, None]
    if FIRST + WIDTH > HEAD_DIM:
        mask = mask & (offs_d < HEAD_DIM)[None, :]
    return tl.load(BASE + rows[:, None] * stride_row + offs_d[None, :], mask=mask, other=0.0)


@triton.jit
def dot_over_head_dim(a, b, A_BASE, a_rows, stride_a, a_len, B_BASE, b_rows, stride_b, b_len,
                      DOT_PRECISION: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
                      D_CHUNK: tl.constexpr):
    """a b^T, float32 [len(a_rows), len(b_rows)]: a score product (Q K^T, dO V^T), the head dim
    contracted. a and b are load_rows tiles of A_BASE and B_BASE (rows a_rows below a_len, b_rows
    below b_len). With D_CHUNK < BLOCK_D (kernels.attention_settings.head_chunk) the product is
    summed over D_CHUNK-column slices loaded here, and a and b go unused: a 3-pass TF32 product
    keeps both halves (high and low) of each operand in registers, which at a [16, 256] float32
    operand is 256 registers a thread, spilled at every tile; slices keep D_CHUNK columns live. The
    slices come from L1/L2 again each time (the accuracy path, not the fast one)."""
    if D_CHUNK == BLOCK_D:
        return tl.dot(a, tl.trans(b), input_precision=DOT_PRECISION)
    s = tl.zeros([a_rows.shape[0], b_rows.shape[0]], dtype=tl.float32)
    for first in tl.static_range(0, BLOCK_D, D_CHUNK):
        a_slice = _load_columns(A_BASE, a_rows, stride_a, a_len, first, D_CHUNK, HEAD_DIM)
        b_slice = _load_columns(B_BASE, b_rows, stride_b, b_len, first, D_CHUNK, HEAD_DIM)
        s = tl.dot(a_slice, tl.trans(b_slice), s, input_precision=DOT_PRECISION)
    return s


@triton.jit
def store_rows(BASE, rows, stride_row, n_rows, tile, HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr):
    """Writes the first HEAD_DIM columns of the rows below n_rows of `tile`, cast to BASE's type.
    `rows` is int64: row offsets of long sequences times their stride can pass 2**31."""
    offs_d = tl.arange(0, BLOCK_D)
    tl.store(BASE + rows[:, None] * stride_row + offs_d[None, :], tile.to(BASE.dtype.element_ty),
             mask=_rows_mask(rows, n_rows, HEAD_DIM, BLOCK_D))


@triton.jit
def add_rows_atomically(BASE, rows, stride_row, n_rows, tile, TILE_IS_TRANSPOSED: tl.constexpr,
                        HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr):
    """Adds the first HEAD_DIM columns of the rows below n_rows of `tile` (float32, [len(rows),
    BLOCK_D], or [BLOCK_D, len(rows)] when TILE_IS_TRANSPOSED) to BASE's float32 rows, atomically.
    Relaxed order: the adds of concurrent programs commute and nothing reads the rows until the
    kernel has finished (the default acq_rel would fence every add)."""
    offs_d = tl.arange(0, BLOCK_D)
    if TILE_IS_TRANSPOSED:
        pointers = BASE + rows[None, :] * stride_row + offs_d[:, None]
        mask = (rows < n_rows)[None, :]
        if HEAD_DIM != BLOCK_D:
            mask = mask & (offs_d < HEAD_DIM)[:, None]
    else:
        pointers = BASE + rows[:, None] * stride_row + offs_d[None, :]
        mask = _rows_mask(rows, n_rows, HEAD_DIM, BLOCK_D)
    tl.atomic_add(pointers, tile, mask=mask, sem="relaxed")


@triton.jit
def visible_keys(m2d, n2d, key_end, causal_shift, KEY_MASK_ROW, APPLY_BOUNDS: tl.constexpr,
                 CAUSAL: tl.constexpr, HAS_KEY_MASK: tl.constexpr):
    """Bool tile, True where the key is visible to the query, or None when every key of the tile
    is (no bounds to apply, no key mask). m2d and n2d are the query and key positions along the
    tile's axes: offs_m[:, None] and offs_n[None, :] for S [M, N], the transposes for S^T."""
    visible = None
    if APPLY_BOUNDS:
        visible = n2d < key_end
        if CAUSAL:
            visible = visible & (n2d <= m2d + causal_shift)
    if HAS_KEY_MASK:
        real_key = tl.load(KEY_MASK_ROW + n2d, mask=n2d < key_end, other=0) != 0
        visible = real_key if visible is None else visible & real_key
    return visible


# Score tiles of at least this many elements draw one Philox evaluation per group of eight keys
# and spread its words over the group with join/reshape; smaller ones draw one per score. The
# grouped [BLOCK_M, BLOCK_N / 8] counter tile then has at least 256 elements, one per thread at 8
# warps: a float32 D=32 dK/dV tile of 16x16 with 4 warps, whose grouped counter tile had fewer
# elements than threads (replicated across warps), computed a wrong dK on an H100 (2026-11-26)
# while the interpreter ran it right, and no grouped tile without replication failed there.
DROPOUT_GROUPED_MIN_TILE = tl.constexpr(8 * 256)


@triton.jit
def dropout_keep(seed, row_base, start_n, dropout_p, BLOCK_N: tl.constexpr,
                 KEYS_AS_ROWS: tl.constexpr):
    """Keep mask of the score tile of queries row_base's rows and keys start_n + [0, BLOCK_N):
    [BLOCK_M, BLOCK_N], or its transpose with KEYS_AS_ROWS. row_base (int64 [BLOCK_M]) is
    dropout_row_base's; start_n is a multiple of 8 (key blocks start at multiples of BLOCK_N)."""
    BLOCK_M: tl.constexpr = row_base.shape[0]
    if BLOCK_M * BLOCK_N >= DROPOUT_GROUPED_MIN_TILE:
        counters = row_base[:, None] + (start_n // 8 + tl.arange(0, BLOCK_N // 8))[None, :]
        w0, w1, w2, w3 = tl.randint4x(seed, counters)
        # Word w of group g goes to 4g + w (join then reshape interleaves), then its low and high
        # halves to keys 8g + 2w and 8g + 2w + 1.
        words = tl.reshape(tl.join(tl.join(w0, w2), tl.join(w1, w3)), [BLOCK_M, BLOCK_N // 2])
        halves = tl.reshape(tl.join(words & 0xFFFF, (words >> 16) & 0xFFFF), [BLOCK_M, BLOCK_N])
    else:  # each score evaluates its group's Philox and picks its half: no data movement
        keys = (start_n + tl.arange(0, BLOCK_N))[None, :]
        w0, w1, w2, w3 = tl.randint4x(seed, row_base[:, None] + keys // 8)
        word_index = (keys % 8) // 2
        word = tl.where(word_index == 0, w0,
                        tl.where(word_index == 1, w1, tl.where(word_index == 2, w2, w3)))
        halves = tl.where(keys % 2 == 0, word & 0xFFFF, (word >> 16) & 0xFFFF)
    # u / 2**16 >= p  <=>  u >= ceil(p * 2**16): p * 2**16 is exact in float32.
    threshold = tl.math.ceil(dropout_p * 65536.0).to(tl.int32)
    keep = halves.to(tl.int32) >= threshold
    if KEYS_AS_ROWS:
        keep = tl.trans(keep)
    return keep


@triton.jit
def dropout_row_base(batch, head, n_heads, offs_m, dropout_seqlen_q, dropout_seqlen_k):
    """The Philox counter of each query row's first key group: ((b * H + h) * Sq + i) * G."""
    groups = (dropout_seqlen_k + 7) // 8
    return ((batch * n_heads + head).to(tl.int64) * dropout_seqlen_q + offs_m) * groups
