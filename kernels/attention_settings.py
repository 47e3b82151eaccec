"""One place that decides tile shapes, warps and pipeline stages of the attention kernels.

Every configuration returned here is compiled ahead of time for sm_80 and sm_90 by the compile tier
(tests/compile/test_triton_attention_compile.py), which fails on register spills, so a change here
is checked without a GPU. Head dims that are not powers of two run in the next power-of-two tile
(BLOCK_D) with the extra columns masked.
"""

from typing import NamedTuple

from .host_math import ceil_div, next_power_of_2

HEAD_DIMS = (16, 32, 64, 80, 96, 128, 256)
ARCHS = (80, 90)

# Queries per program in the decode (few-query, split-key) path: the smallest M tl.dot takes.
DECODE_BLOCK_M = 16
# Most programs one query row's keys are split across; the combine kernel loops over the splits.
MAX_KEY_SPLITS = 64
# A split should hold at least this many key blocks, or the combine step costs more than it saves.
MIN_BLOCKS_PER_SPLIT = 2
# Keys fewer than this many blocks are not split at all. Splitting buys parallelism for a long
# stream of keys and costs a second launch (the combine kernel): a few microseconds of device time,
# and in KV-cache generation at small batch, where splitting happens, 10-20 us of host time the
# token waits for. Eight blocks of 64 keys at D=64 in 16-bit are 128 KB of K and V, a couple of
# microseconds of one SM's streaming: below that one program is estimated to finish before the
# second launch would (not yet measured on a GPU). GPT2-small generating 256 tokens after a short
# prompt stays below it and runs one launch per layer and token.
MIN_KEY_BLOCKS_TO_SPLIT = 8

# maxnreg of every attention launch. Without it ptxas, knowing the block size, trades registers
# for occupancy and spills a few bytes (e.g. decode D=16 on sm_90: 96 registers and 8 B of stack);
# with it the same kernel keeps everything in 126 registers.
MAX_REGISTERS = 255

# The split combine loads every split of its rows at once: at most this many float32 partial
# outputs a program (32 a thread at 4 warps), and at most COMBINE_MAX_ROWS rows.
COMBINE_TILE_ELEMENTS = 4096
COMBINE_MAX_ROWS = 16
DELTA_BLOCK_ROWS = 32
DELTA_WARPS = 4


class Tiles(NamedTuple):
    block_m: int
    block_n: int
    num_warps: int
    num_stages: int


def head_block(head_dim):
    """BLOCK_D: the power-of-two tile width that holds `head_dim` columns."""
    if head_dim not in HEAD_DIMS:
        raise ValueError(f"head dim {head_dim} is not supported; expected one of {HEAD_DIMS}")
    return next_power_of_2(head_dim)


# Tiles per (BLOCK_D, 32-bit inputs, dropout). The compile tier checks every entry on sm_80 and
# sm_90 with triton 3.8 and 3.6, built as a launch builds them: compile-time HEAD_DIM, 16-aligned
# strides, maxnreg=MAX_REGISTERS, in every flag variant a launch compiles (causal, key mask,
# varlen, each head dim of the tile; float32 entries too since 2026-12-08, see below).
# 16-bit forward follows FlashAttention-2's Triton tiles (BLOCK_M 128) where they fit; measured
# 2026-11-26 with triton 3.6 and 3.8 in every flag variant (causal, key mask, varlen; head dims
# 80/96/128): D<=64 128x64 with 4 warps at most 255 registers and no stack on both archs; D=128
# 128x64 with 8 warps on sm_90 (wgmma, 64 rows per warp group: 248 registers). sm_80 at D=128
# spilled 16-48 B at 128x64/8 warps and, under triton 3.8, 8 B at 128x32/4 (non-causal varlen,
# head dims 80/96): it takes 64x64/4 (64x32/4 with dropout, where 64x64 spilled 24 B). With
# dropout on sm_80, D=64 64x64/4 spilled 8 B causal (triton 3.8) and takes 64x32/4.
# 32-bit inputs run tl.dot as 3-pass TF32 (full float32 accuracy on tensor cores); their tiles
# hold twice the bytes and three products, hence far fewer rows. D=256 float32 takes 32x16/8 warps,
# one stage: at 32x32 it needed 100 KB of shared memory, more than sm_80's 99 KB, and 3-pass TF32
# fits only with Q K^T summed over head-dim slices (head_chunk), whose loads a second stage
# buffered past sm_80's 99 KB (116 KB); 255 registers 3-pass, fewer with 1-pass TF32.
# float32 with dropout, D=32 takes 32x32 and D=80-128 one stage: 32x64 spilled 8 B (triton 3.8
# non-causal on both archs, 3.6 on sm_90) and 16x32 with two stages 8 B (3.6, sm_80, non-causal
# varlen), in flag variants the compile tier did not build for float32 before 2026-12-08. Now
# 205-236 registers in every variant, triton 3.6 and 3.8.
_FORWARD = {
    (16, False, False): Tiles(128, 64, 4, 3), (32, False, False): Tiles(128, 64, 4, 3),
    (64, False, False): Tiles(128, 64, 4, 3), (128, False, False): Tiles(64, 64, 4, 3),
    (256, False, False): Tiles(64, 32, 8, 2),
    (16, True, False): Tiles(32, 64, 4, 2), (32, True, False): Tiles(32, 32, 4, 2),
    (64, True, False): Tiles(32, 32, 4, 2), (128, True, False): Tiles(16, 32, 4, 2),
    (256, True, False): Tiles(32, 16, 8, 1),
    (16, False, True): Tiles(64, 64, 4, 3), (32, False, True): Tiles(64, 64, 4, 3),
    (64, False, True): Tiles(64, 32, 4, 3), (128, False, True): Tiles(64, 32, 4, 3),
    (256, False, True): Tiles(64, 32, 8, 2),
    (16, True, True): Tiles(32, 64, 4, 2), (32, True, True): Tiles(32, 32, 4, 2),
    (64, True, True): Tiles(32, 32, 4, 2), (128, True, True): Tiles(16, 32, 4, 1),
    (256, True, True): Tiles(32, 16, 8, 1),
}
# sm_90 and newer, where they differ from _FORWARD. D=128 without dropout keeps _FORWARD's 64x64
# with 4 warps: on an H100 (2026-11-26, benchmarks/tune_attention.py, bf16, S=2048) it ran 471
# TFLOP/s dense and 396 causal against 434 and 350 for 128x64/8 warps (FlashAttention-2's tile).
_FORWARD_SM90 = {
    (64, False, True): Tiles(64, 64, 4, 3),
    (128, False, True): Tiles(128, 64, 8, 3),
}

# Which 16-bit sm_90 tiles lower every tl.dot to wgmma (warpgroup MMA, Hopper's fastest path):
# Triton takes it for a product whose M (rows of its output) is a multiple of 64 with warps in whole
# warp groups (a multiple of 4), else mma.sync. The compile tier asserts uses_wgmma.
# - forward: BLOCK_M 64 or 128 at every head dim, with and without dropout;
# - backward_dq: BLOCK_M 64 at every head dim (_BACKWARD_DQ_SM90 for D=128 and 256);
# - backward_dkdv: its tiles are transposed ([BLOCK_N keys, BLOCK_M queries]) so every product has
#   M = BLOCK_N; BLOCK_N 64/128 with 8 warps (_BACKWARD_DKDV_SM90) at D<=64, and D=128 without
#   dropout. D=128 with dropout and D=256 spill at BLOCK_N 64 and stay on mma.sync;
# - decode (BLOCK_M 16) stays on mma.sync: it streams the KV cache and is bound by memory.
# float32 inputs (3-pass TF32) are not asserted: their tiles are sized for registers, not wgmma.
WGMMA_ROLES = frozenset({"forward", "backward_dq"})
# The dK/dV kernel with ATOMIC_DQ, as all_configs names it for non-causal and causal calls.
ATOMIC_DQ_ROLES = ("backward_atomic_dq", "backward_atomic_dq_causal")


def uses_wgmma(role, block_d, dropout):
    """Whether every product of this role's 16-bit sm_90 tiles runs on wgmma (see above)."""
    if role in ATOMIC_DQ_ROLES:  # dQ^T = K^T dS^T: its M is BLOCK_D
        return block_d >= 64 and uses_wgmma("backward_dkdv", block_d, dropout)
    if role == "backward_dkdv":
        return block_d <= 64 or (block_d == 128 and not dropout)
    return role in WGMMA_ROLES


# float32 dK/dV without dropout under 3-pass TF32 dots (D=80 to 256): dV and dK in a launch each
# (the kernel's WANT_DK, WANT_DV), one float32 accumulator live at a time, each launch recomputing
# S. With both accumulators every tile tried spilled 8-392 B. One at a time fits on sm_80 and sm_90
# in all six flag variants (triton 3.8, 2026-12-08; the compile tier, which builds float32 in the
# causal + key mask variant, under 3.6 too): D=128 at 16x32 with 4 warps (72 KB of shared memory:
# the compiler keeps the loop-invariant K and V head-dim slices there), D=256 at 16x16 with 4 warps
# on the Ampere tables (80 KB) and 16x32 with 8 warps on Hopper's (144 KB; 16x16 spilled 8-64 B
# there). With dropout the dK launch still spilled: 16-328 B at D=128 with 64-column slices; with
# 32-column ones it fit causal + key mask but spilled 8-80 B in the other variants; SPILLING. The
# D=256 backward stays off for its dQ anyway.
_SEPARATE_DV = frozenset({(128, False), (256, False)})  # (BLOCK_D, dropout)


def dkdv_separate_dv(head_dim, is_fp32, dropout, dot_precision):
    """Whether a dK/dV launch of this DOT_PRECISION becomes two, dV then dK (see above)."""
    return (is_fp32 and dot_precision == "tf32x3"
            and (head_block(head_dim), bool(dropout)) in _SEPARATE_DV)


def dkdv_keys_as_rows(head_dim, arch, is_fp32, dropout=False):
    """The dK/dV kernel's KEYS_AS_ROWS: transposed tiles exactly where they buy wgmma. With
    mma.sync they cost registers (sm_80 tiles that fit before spilled 8-184 B transposed)."""
    return arch >= 90 and not is_fp32 and uses_wgmma("backward_dkdv", head_block(head_dim), dropout)


# Decode: BLOCK_M is DECODE_BLOCK_M; wide key blocks stream the KV cache. float32 D=256: 8 warps,
# one stage (3-pass TF32 with head-dim slices: 4 warps and two stages spilled 8-16 B); float32
# D=80-128 with dropout one stage, as the forward (two spilled 8 B: triton 3.6, sm_80, varlen).
_DECODE = {
    (16, False, False): Tiles(DECODE_BLOCK_M, 64, 4, 3), (32, False, False): Tiles(DECODE_BLOCK_M, 64, 4, 3),
    (64, False, False): Tiles(DECODE_BLOCK_M, 64, 4, 3), (128, False, False): Tiles(DECODE_BLOCK_M, 32, 4, 3),
    (256, False, False): Tiles(DECODE_BLOCK_M, 32, 4, 2),
    (16, True, False): Tiles(DECODE_BLOCK_M, 32, 4, 2), (32, True, False): Tiles(DECODE_BLOCK_M, 32, 4, 2),
    (64, True, False): Tiles(DECODE_BLOCK_M, 32, 4, 2), (128, True, False): Tiles(DECODE_BLOCK_M, 32, 4, 2),
    (256, True, False): Tiles(DECODE_BLOCK_M, 16, 8, 1),
    (16, False, True): Tiles(DECODE_BLOCK_M, 64, 4, 3), (32, False, True): Tiles(DECODE_BLOCK_M, 64, 4, 3),
    (64, False, True): Tiles(DECODE_BLOCK_M, 64, 4, 3), (128, False, True): Tiles(DECODE_BLOCK_M, 32, 4, 3),
    (256, False, True): Tiles(DECODE_BLOCK_M, 32, 4, 2),
    (16, True, True): Tiles(DECODE_BLOCK_M, 32, 4, 2), (32, True, True): Tiles(DECODE_BLOCK_M, 32, 4, 2),
    (64, True, True): Tiles(DECODE_BLOCK_M, 32, 4, 2), (128, True, True): Tiles(DECODE_BLOCK_M, 32, 4, 1),
    (256, True, True): Tiles(DECODE_BLOCK_M, 16, 8, 1),
}

# With dropout, tiles below kernels.attention_tiles.DROPOUT_GROUPED_MIN_TILE scores draw one Philox
# evaluation per score, which costs registers: at 32x32 with 4 warps the sm_80 dK/dV at D=32
# (16-bit) and dQ at D=32 (float32) spilled 8-32 B under triton 3.6 and take 16x32.
# Backward, two kernels. dK/dV: each program owns BLOCK_N keys and walks query blocks of BLOCK_M;
# dQ: each program owns BLOCK_M queries and walks key blocks of BLOCK_N. The owned side is the wide
# one (it stays in registers with its fp32 gradient accumulator); the walked side is narrow.
_BACKWARD_DKDV = {
    (16, False, False): Tiles(32, 64, 8, 3), (32, False, False): Tiles(32, 32, 4, 3),
    (64, False, False): Tiles(32, 32, 4, 2), (128, False, False): Tiles(16, 64, 8, 3),
    (256, False, False): Tiles(16, 32, 8, 2),
    (16, True, False): Tiles(16, 32, 4, 2), (32, True, False): Tiles(16, 16, 4, 2),
    (64, True, False): Tiles(16, 32, 4, 2), (128, True, False): Tiles(16, 32, 4, 1),
    (256, True, False): Tiles(16, 16, 4, 1),
    (16, False, True): Tiles(32, 32, 4, 3), (32, False, True): Tiles(16, 32, 4, 2),
    (64, False, True): Tiles(16, 32, 4, 2), (128, False, True): Tiles(16, 64, 8, 3),
    (256, False, True): Tiles(16, 32, 8, 2),
    (16, True, True): Tiles(16, 32, 4, 2), (32, True, True): Tiles(16, 16, 4, 2),
    (64, True, True): Tiles(16, 32, 8, 1), (128, True, True): Tiles(16, 32, 8, 2),
    (256, True, True): Tiles(16, 16, 8, 2),
}
# float32 D=64 with dropout (BERT and GPT2 trained in float32) takes 16x32 with 8 warps and one
# stage: 233-254 registers in every flag variant on sm_80 and sm_90 under triton 3.6 and 3.8
# (2026-12-06), where 16x32/4 warps spilled 16 B and two stages 8 B (3.8, causal varlen).
# sm_90: the dK/dV products have M = BLOCK_N (transposed tiles, kernels.attention_bwd); BLOCK_N 64
# or 128 with 8 warps puts them all on wgmma (measured 2026-11-26, triton 3.6: 4 warps at
# BLOCK_N 64 reached 255 registers at D=64 and spilled from D=128 on; BLOCK_M 32 spilled at every
# head dim). D=128 with dropout spilled 16 B even at 16x64/8 warps, and D=256 at every BLOCK_N 64
# tile: those keep the mma.sync tiles of _BACKWARD_DKDV.
# D=64 and D=128 without dropout take BLOCK_N 128, the fastest spill-free tiles of an H100 sweep
# (2026-11-26, benchmarks/tune_attention.py, bf16, S=2048, the whole backward timed; TFLOP/s dense /
# causal): D=64 32x128 224 / 215 and 16x128 262 / 169, against 136 / 125 at 16x64 (32x128 taken:
# GPT2 trains causal); D=128 16x128 172 / 164 against 140 / 103 at 16x64. (8 warps and 2 stages
# both: 32x128 reaches 255 registers at D=64, and 3 stages spilled.) D=64 with dropout 0.1 takes
# 16x128 (H100 sweep at GPT2's head size, S=1024: whole backward 3.84 / 2.15 ms dense / causal
# against 4.12 / 3.08 at 16x64; logs-2026-11-26b-h100/tune-backward_dkdv-gpt2.log).
_BACKWARD_DKDV_SM90 = {
    (16, False, False): Tiles(16, 128, 8, 3), (32, False, False): Tiles(16, 64, 8, 2),
    (64, False, False): Tiles(32, 128, 8, 2), (128, False, False): Tiles(16, 128, 8, 2),
    (16, False, True): Tiles(16, 128, 8, 3), (32, False, True): Tiles(16, 64, 8, 2),
    (64, False, True): Tiles(16, 128, 8, 2),
    (256, True, False): Tiles(16, 32, 8, 1),  # dV and dK apart (dkdv_separate_dv); 144 KB
}
# float32 D=32 takes 32x16: at 32x32 the sm_90 build (causal + key mask) reached 255 registers
# and spilled 8 B once the backward zeroed hidden keys after the exponent (2026-11-27); 32x16
# takes 152-189.
# float32 without dropout, D=64 takes 16x32 (202-216 registers) and D=80-128 16x32 with 8 warps and
# one stage (253-254): 32x32 and 16x32 with 4 warps and two stages spilled 8 B in variants the
# compile tier did not build for float32 before 2026-12-08 (D=64 sm_90 causal; D=80-128 non-causal
# with a key mask, both archs, triton 3.8). 16x16 spilled more (8-32 B), and so did 8 warps with two
# stages.
_BACKWARD_DQ = {
    (16, False, False): Tiles(64, 32, 4, 3), (32, False, False): Tiles(64, 32, 4, 3),
    (64, False, False): Tiles(64, 32, 4, 3), (128, False, False): Tiles(32, 32, 4, 3),
    (256, False, False): Tiles(32, 16, 4, 2),
    (16, True, False): Tiles(32, 32, 4, 2), (32, True, False): Tiles(32, 16, 4, 2),
    (64, True, False): Tiles(16, 32, 4, 2), (128, True, False): Tiles(16, 32, 8, 1),
    (256, True, False): Tiles(16, 16, 4, 2),
    (16, False, True): Tiles(64, 32, 4, 3), (32, False, True): Tiles(64, 32, 4, 3),
    (64, False, True): Tiles(64, 32, 4, 3), (128, False, True): Tiles(32, 32, 4, 3),
    (256, False, True): Tiles(32, 16, 4, 2),
    (16, True, True): Tiles(32, 32, 4, 2), (32, True, True): Tiles(16, 32, 4, 2),
    (64, True, True): Tiles(32, 32, 4, 2), (128, True, True): Tiles(16, 32, 8, 1),
    (256, True, True): Tiles(16, 16, 4, 2),
}
# float32 D=128 with dropout: one stage (252-254 registers, every flag variant and D=80/96/128,
# triton 3.6 and 3.8, 2026-12-06); two stages spilled 16 B under triton 3.8 on sm_90.
# sm_90: BLOCK_M 64 at every head dim, so that all three products (M = BLOCK_M) run on wgmma. 8 warps
# (two warp groups split the columns): D=128 64x32 needed 122-198 registers (triton 3.6), D=256
# 64x16 167-215, where 4 warps took 184-236 and spilled 8 B at D=256. D=128 without dropout takes
# 128x32 (165 registers): the whole backward ran 170 / 118 TFLOP/s dense / causal on an H100
# against 140 / 103 at 64x32 (the 2026-11-26 sweep above).
_BACKWARD_DQ_SM90 = {
    (128, False, False): Tiles(128, 32, 8, 3), (128, False, True): Tiles(64, 32, 8, 3),
    (256, False, False): Tiles(64, 16, 8, 2), (256, False, True): Tiles(64, 16, 8, 2),
    (256, True, False): Tiles(16, 16, 4, 1),  # fits Hopper's table only: SPILLING
}


# Backward with dQ added atomically by the dK/dV kernel (kernels.attention_bwd, ATOMIC_DQ): five
# tile products instead of seven, and no dQ kernel. Per (head dim, is_fp32, dropout), the dK/dV
# kernel's tiles in that form for (non-causal, causal) calls, sm_90 16-bit only; None, a missing
# entry, and torch.use_deterministic_algorithms(True) run the two-kernel backward. Keyed by the
# head dim itself, not BLOCK_D: at D=80 and 96 the column mask costs the 16x128 tile 8 B of spill
# (triton 3.6, key mask or varlen), so only D=128 takes it.
# The atomics: each tile adds scale * dS K, [BLOCK_M, D] float32, to dQ; on sm_90 Triton emits
# REDG.E.ADD.F32x4 (four floats, no return). Bytes added per FLOP of the five products: 0.4 /
# BLOCK_N, so BLOCK_N 128 (FlashAttention-2's key block at D=128): 2.1 GB for the issue's D=128
# S=2048 case, about 1 TB/s into L2 at 300 TFLOP/s.
# Screened for spills (triton 3.6 and 3.8, 2026-12-06, sm_90, bf16, six flag variants):
# - D=64 16x128 fits everywhere (203-255 registers under 3.6); 32x128 spills 8-56 B.
# - D=128 16x128 fits non-causal (254-255) and spills 40-88 B causal; 16x64 spills 16-32 B causal;
#   16x128 with one stage fits all (247-252) but does not prefetch the query tiles.
# - D=64 with dropout spills at 16x128 (32-64 B causal) and fits at 16x64, whose key block doubles
#   the atomics and ran the two-kernel backward slower (4.12 / 3.08 against 3.84 / 2.15 ms).
# Taken: non-causal calls without dropout, whose dK/dV tile stays (D=128) or becomes the one that
# ran fastest non-causal (D=64: 262 against 224 TFLOP/s at 32x128), so the change there is one
# product more in the dK/dV kernel and no dQ kernel. Causal calls keep two kernels: at D=64 the
# 16x128 tile ran the causal backward slower than 32x128 (169 against 215), and D=128 has no
# causal tile that fits. Not yet timed on a GPU: benchmarks/tune_attention.py --role
# backward_atomic_dq compares the forms, causal calls included (NOTES.md).
_BACKWARD_ATOMIC_DQ_SM90 = {
    (64, False, False): (Tiles(16, 128, 8, 2), None),
    (128, False, False): (Tiles(16, 128, 8, 2), None),
}


def _pick(table, sm90_table, head_dim, arch, is_fp32, dropout):
    key = (head_block(head_dim), bool(is_fp32), bool(dropout))
    if arch >= 90 and key in sm90_table:
        return sm90_table[key]
    return table[key]


def forward_tiles(head_dim, arch, is_fp32, dropout=False):
    """`arch`: compute capability as 80, 86, 90... (sm_90 has its own entries: wgmma tiles).
    `dropout`: the kernel draws the Philox keep mask of every score tile (HAS_DROPOUT), which needs
    its own, smaller tiles."""
    return _pick(_FORWARD, _FORWARD_SM90, head_dim, arch, is_fp32, dropout)


def decode_tiles(head_dim, is_fp32, dropout=False):
    return _DECODE[(head_block(head_dim), bool(is_fp32), bool(dropout))]


def backward_dkdv_tiles(head_dim, arch, is_fp32, dropout=False):
    return _pick(_BACKWARD_DKDV, _BACKWARD_DKDV_SM90, head_dim, arch, is_fp32, dropout)


def backward_dq_tiles(head_dim, arch, is_fp32, dropout=False):
    return _pick(_BACKWARD_DQ, _BACKWARD_DQ_SM90, head_dim, arch, is_fp32, dropout)


def backward_atomic_dq_tiles(head_dim, arch, is_fp32, dropout=False, causal=False):
    """The dK/dV kernel's tiles when it also accumulates dQ (ATOMIC_DQ), or None where the
    backward runs the dQ kernel."""
    pair = _BACKWARD_ATOMIC_DQ_SM90.get((head_dim, bool(is_fp32), bool(dropout)))
    return None if arch < 90 or pair is None else pair[bool(causal)]


class CombineTiles(NamedTuple):
    block_splits: int
    block_rows: int
    num_warps: int


def combine_tiles(splits, head_dim):
    """Tile of the split combine: every split (BLOCK_SPLITS, a power of two) of BLOCK_ROWS rows.
    Fewer rows as splits and head dim grow keep the tile at COMBINE_TILE_ELEMENTS; one row of the
    widest case (64 splits x 256 columns) takes 16384, spread over 8 warps."""
    block_splits = next_power_of_2(splits)
    row_elements = block_splits * head_block(head_dim)
    block_rows = max(1, min(COMBINE_MAX_ROWS, COMBINE_TILE_ELEMENTS // row_elements))
    num_warps = 8 if block_rows * row_elements > COMBINE_TILE_ELEMENTS else 4
    return CombineTiles(block_splits, block_rows, num_warps)


# Head-dim slices of the score products (Q K^T, dO V^T; kernels.attention_tiles.dot_over_head_dim)
# under 3-pass TF32, where a whole [rows, BLOCK_D] float32 operand held for tl.dot, its high and
# low halves both, spilled registers at every tile (down to 16x16, one stage): slice width per
# (role, BLOCK_D). The D=256 forward and decode fit in every flag variant with 32 columns (with 64,
# 8 B spilled in a few variants, sm_80 and sm_90, triton 3.6 and 3.8); the D=256 backward spilled
# least with 64. 16-bit and 1-pass TF32 dots take whole tiles.
_HEAD_CHUNKS_3PASS = {("forward", 256): 32, ("decode", 256): 32, ("backward_dq", 256): 64,
                      ("backward_dkdv", 128): 64, ("backward_dkdv", 256): 64}


def head_chunk(role, block_d, dot_precision):
    """The kernels' D_CHUNK: the width of the head-dim slices a score product is summed over
    (BLOCK_D itself: one product). `dot_precision` as the launch's DOT_PRECISION."""
    if dot_precision == "tf32x3":
        return _HEAD_CHUNKS_3PASS.get((role, block_d), block_d)
    return block_d


def uses_decode_tiles(max_seqlen_q):
    """Few queries per sequence (KV-cache generation): one 16-row query block covers them."""
    return max_seqlen_q <= DECODE_BLOCK_M


def key_splits(query_programs, max_seqlen_k, block_n, program_slots):
    """How many programs share one query block's keys (split-K / flash-decoding).

    `query_programs` programs exist without splitting; `program_slots` is how many the GPU runs at
    once. Split only when that leaves the GPU short of work and the keys are at least
    MIN_KEY_BLOCKS_TO_SPLIT blocks long, and keep each split at least MIN_BLOCKS_PER_SPLIT key
    blocks long. Returns (splits, keys_per_split), keys_per_split a multiple of block_n.
    """
    key_blocks = ceil_div(max(max_seqlen_k, 1), block_n)
    splits = 1
    if query_programs < program_slots and key_blocks >= MIN_KEY_BLOCKS_TO_SPLIT:
        splits = min(ceil_div(program_slots, query_programs), MAX_KEY_SPLITS,
                     max(1, key_blocks // MIN_BLOCKS_PER_SPLIT))
    blocks_per_split = ceil_div(key_blocks, splits)
    splits = ceil_div(key_blocks, blocks_per_split)  # no empty trailing split
    return splits, blocks_per_split * block_n


# (role, BLOCK_D, is_fp32, dropout) whose tiles still spill registers on sm_80 or sm_90 (compile
# tier, triton 3.8 and 3.6), all float32 (3-pass TF32): the dQ at D=256 and, with dropout, the
# dK/dV at D=128 and 256 (without dropout they fit as two launches: dkdv_separate_dv). Their score
# products already run over head-dim slices (head_chunk), which let the D=256 forward and decode
# leave the list (2026-12-07) and brought the D=256 dQ from 232-360 B of stack to 0-8 B (8 B
# without dropout at every tile tried on sm_80, 16x16 to 32x16, 2 to 8 warps, one or two stages,
# 32- or 64-column slices; on sm_90 16x16 with 4 warps and one stage fits: off on sm_80 only). Slicing the outputs too (one unrolled pass over the blocks per
# slice of dK/dV or dQ) spilled more, 16-144 B: the compiler issues every slice's loads ahead of the
# products, so the loaded slices, not the accumulators, fill the registers. Open work. (16-bit dK/dV
# D=64 with dropout left the list at 16x32/4 warps on sm_80: 198-202 registers; float32 dK/dV D=64
# and dQ D=128 with dropout at one stage, 2026-12-06.) On GPUs the triton backend is switched off
# for calls that would launch one (dispatch picks another backend; asking for triton by name raises
# and says why); the interpreter, which has no registers, still runs them in the tests. Not when the
# user allowed TF32 in torch: 1-pass TF32 dots take far fewer registers, and every float32 tile,
# these included, fits then (120-239 registers, no stack, every flag variant, triton 3.6 and 3.8,
# 2026-12-06; the compile tier builds them as tf32_configs() lists them).
# (role, BLOCK_D, is_fp32, dropout) -> the tile tables (ARCHS) where it spills; switched off on
# the GPUs that take those tables (fastattn.backends._device.tile_arch).
_BOTH_TABLES = frozenset(ARCHS)
SPILLING = {
    ("backward_dkdv", 128, True, True): _BOTH_TABLES,
    ("backward_dkdv", 256, True, True): _BOTH_TABLES,
    # Hopper's table takes 16x16/4 warps/1 stage (255 registers, no stack, every flag variant,
    # triton 3.6 and 3.8; two stages spilled 8-16 B with a key mask), 2026-12-08.
    ("backward_dq", 256, True, False): frozenset({80}),
    ("backward_dq", 256, True, True): _BOTH_TABLES,
}

# (role, BLOCK_D, is_fp32, dropout) that compile without spilling but computed wrong numbers on a
# GPU, switched off there like SPILLING, with what was seen. The interpreter runs them right, so
# the tests still cover their code; the gpu tier's run of each case says when one can come back.
WRONG_ON_GPU = {
    # test_dropout_matches_reference[triton-fp32-masked_causal] (B=2, H=2, Sq=70, Sk=90, D=32):
    # dK off by 3.1 on an H100 (triton 3.6, 2026-11-26), dense dropout and every 16-bit dtype
    # right. Suspected: this 16x16 tile with 4 warps drew a [16, 4] Philox tile, fewer elements
    # than threads, which join/reshape then interleaved. Such small tiles now draw per score
    # (kernels.attention_tiles.DROPOUT_GROUPED_MIN_TILE); off until a GPU run shows it right.
    ("backward_dkdv", 32, True, True): "computed a wrong dK on an H100 (causal + padding mask)",
}

_ROLES_FORWARD = ("forward", "decode")
_ROLES_BACKWARD = ("backward_dkdv", "backward_dq")


def switch_off_reason(head_dim, is_fp32, dropout, needs_backward, *, arch, tf32=False):
    """Why the triton kernels cannot take this call on a GPU whose tile tables are `arch`'s (80 or
    90: fastattn.backends._device.tile_arch) (SPILLING, WRONG_ON_GPU), or None.
    `tf32`: float32 dots run as 1-pass TF32 (the user allowed it in torch), where nothing spills."""
    roles = _ROLES_FORWARD + (_ROLES_BACKWARD if needs_backward else ())
    keys = [(role, head_block(head_dim), bool(is_fp32), bool(dropout)) for role in roles]
    kind = "float32" if is_fp32 else "16-bit"
    case = f"head dim {head_dim}, {kind} inputs{' with dropout' if dropout else ''}"
    spilling = [] if tf32 else [key[0] for key in keys if arch in SPILLING.get(key, ())]
    if spilling:
        return (f"switched off: its {', '.join(spilling)} tiles for {case} spill registers in "
                f"the sm_{arch} tile tables under full-float32 (3-pass TF32) dots; they fit where "
                "torch.backends.cuda.matmul.allow_tf32 is True")
    wrong = [f"{key[0]} {WRONG_ON_GPU[key]}" for key in keys if key in WRONG_ON_GPU]
    if wrong:
        return f"switched off for {case}: its {'; '.join(wrong)}"
    return None


def all_configs():
    """Every (kernel role, BLOCK_D, arch, is_fp32, dropout, Tiles) the launchers can pick with
    full-float32 dots: the compile tier's list. Head dims sharing a BLOCK_D (80, 96, 128) share
    their configs, but for the atomic-dQ roles' tiles, which are per head dim (the compile tier asks
    backward_atomic_dq_tiles which head dims launch them); configs SPILLING lists for their arch
    are switched off in dispatch and left out."""
    for config in _every_config():
        if config[2] not in SPILLING.get(config[:2] + config[3:5], ()):
            yield config


def tf32_configs():
    """The float32 configs as launched where TF32 is allowed (1-pass TF32 dots, same tiles): every
    one, SPILLING's included (switch_off_reason lets them run there)."""
    return (config for config in _every_config() if config[3])


def _every_config():
    for head_dim in sorted({head_block(d) for d in HEAD_DIMS}):
        for is_fp32 in (False, True):
            for dropout in (False, True):
                for arch in ARCHS:
                    for role, tiles in (
                            ("forward", forward_tiles(head_dim, arch, is_fp32, dropout)),
                            ("decode", decode_tiles(head_dim, is_fp32, dropout)),
                            ("backward_dkdv", backward_dkdv_tiles(head_dim, arch, is_fp32, dropout)),
                            ("backward_dq", backward_dq_tiles(head_dim, arch, is_fp32, dropout)),
                            *((role, backward_atomic_dq_tiles(head_dim, arch, is_fp32, dropout,
                                                              role.endswith("causal")))
                              for role in ATOMIC_DQ_ROLES)):
                        if tiles is not None:
                            yield role, head_dim, arch, is_fp32, dropout, tiles
