"""One place that decides tile shapes, warps and pipeline stages of the attention kernels.

Every configuration returned here is compiled ahead of time for sm_80 and sm_90 by the compile tier
(tests/compile/test_triton_attention_compile.py), which fails on register spills, so a change here
is checked without a GPU. Head dims that are not powers of two run in the next power-of-two tile
(BLOCK_D) with the extra columns masked.
"""

from typing import NamedTuple

import triton

HEAD_DIMS = (16, 32, 64, 80, 96, 128, 256)
ARCHS = (80, 90)

# Queries per program in the decode (few-query, split-key) path: the smallest M tl.dot takes.
DECODE_BLOCK_M = 16
# Most programs one query row's keys are split across; the combine kernel loops over the splits.
MAX_KEY_SPLITS = 64
# A split should hold at least this many key blocks, or the combine step costs more than it saves.
MIN_BLOCKS_PER_SPLIT = 2

COMBINE_BLOCK_ROWS = 16
COMBINE_WARPS = 4
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
    return triton.next_power_of_2(head_dim)


def _arch_key(arch):
    # Anything newer than Hopper takes Hopper's configs (the compile tier checks 80 and 90 only).
    return 90 if arch >= 90 else 80


# (arch, BLOCK_D, 32-bit) -> Tiles. 32-bit inputs hold twice the bytes per tile in shared memory
# and registers, hence smaller key blocks. sm_90 gets deeper pipelines (its 227 KB of shared memory
# holds more stages), which keeps its tensor cores fed.
_FORWARD = {
    (80, 16, False): Tiles(128, 64, 4, 3), (80, 32, False): Tiles(128, 64, 4, 3),
    (80, 64, False): Tiles(128, 64, 4, 3), (80, 128, False): Tiles(128, 64, 8, 3),
    (80, 256, False): Tiles(64, 64, 8, 2),
    (90, 16, False): Tiles(128, 64, 4, 4), (90, 32, False): Tiles(128, 64, 4, 4),
    (90, 64, False): Tiles(128, 128, 8, 3), (90, 128, False): Tiles(128, 128, 8, 3),
    (90, 256, False): Tiles(64, 64, 8, 2),
    (80, 16, True): Tiles(64, 64, 4, 2), (80, 32, True): Tiles(64, 64, 4, 2),
    (80, 64, True): Tiles(64, 64, 4, 2), (80, 128, True): Tiles(64, 32, 4, 2),
    (80, 256, True): Tiles(32, 32, 4, 1),
    (90, 16, True): Tiles(64, 64, 4, 2), (90, 32, True): Tiles(64, 64, 4, 2),
    (90, 64, True): Tiles(64, 64, 4, 2), (90, 128, True): Tiles(64, 32, 4, 2),
    (90, 256, True): Tiles(32, 32, 4, 1),
}

# Decode: BLOCK_M is DECODE_BLOCK_M; wide key blocks stream the KV cache.
_DECODE = {
    (16, False): Tiles(DECODE_BLOCK_M, 128, 4, 3), (32, False): Tiles(DECODE_BLOCK_M, 128, 4, 3),
    (64, False): Tiles(DECODE_BLOCK_M, 128, 4, 3), (128, False): Tiles(DECODE_BLOCK_M, 64, 4, 3),
    (256, False): Tiles(DECODE_BLOCK_M, 32, 4, 2),
    (16, True): Tiles(DECODE_BLOCK_M, 64, 4, 2), (32, True): Tiles(DECODE_BLOCK_M, 64, 4, 2),
    (64, True): Tiles(DECODE_BLOCK_M, 64, 4, 2), (128, True): Tiles(DECODE_BLOCK_M, 32, 4, 2),
    (256, True): Tiles(DECODE_BLOCK_M, 32, 4, 1),
}

# Backward, two kernels. dK/dV: each program owns BLOCK_N keys and walks query blocks of BLOCK_M;
# dQ: each program owns BLOCK_M queries and walks key blocks of BLOCK_N. The owned side is the wide
# one (it stays in registers with its fp32 gradient accumulator); the walked side is narrow.
_BACKWARD_DKDV = {
    (16, False): Tiles(32, 64, 4, 3), (32, False): Tiles(32, 64, 4, 3),
    (64, False): Tiles(32, 128, 4, 3), (128, False): Tiles(32, 64, 4, 3),
    (256, False): Tiles(16, 32, 4, 2),
    (16, True): Tiles(32, 64, 4, 2), (32, True): Tiles(32, 64, 4, 2),
    (64, True): Tiles(32, 64, 4, 2), (128, True): Tiles(16, 32, 4, 2),
    (256, True): Tiles(16, 16, 4, 1),
}
_BACKWARD_DQ = {
    (16, False): Tiles(64, 32, 4, 3), (32, False): Tiles(64, 32, 4, 3),
    (64, False): Tiles(128, 32, 4, 3), (128, False): Tiles(64, 32, 4, 3),
    (256, False): Tiles(32, 16, 4, 2),
    (16, True): Tiles(64, 32, 4, 2), (32, True): Tiles(64, 32, 4, 2),
    (64, True): Tiles(64, 32, 4, 2), (128, True): Tiles(32, 16, 4, 2),
    (256, True): Tiles(16, 16, 4, 1),
}


def forward_tiles(head_dim, arch, is_fp32):
    return _FORWARD[(_arch_key(arch), head_block(head_dim), bool(is_fp32))]


def decode_tiles(head_dim, is_fp32):
    return _DECODE[(head_block(head_dim), bool(is_fp32))]


def backward_dkdv_tiles(head_dim, is_fp32):
    return _BACKWARD_DKDV[(head_block(head_dim), bool(is_fp32))]


def backward_dq_tiles(head_dim, is_fp32):
    return _BACKWARD_DQ[(head_block(head_dim), bool(is_fp32))]


def uses_decode_tiles(max_seqlen_q):
    """Few queries per sequence (KV-cache generation): one 16-row query block covers them."""
    return max_seqlen_q <= DECODE_BLOCK_M


def key_splits(query_programs, max_seqlen_k, block_n, program_slots):
    """How many programs share one query block's keys (split-K / flash-decoding).

    `query_programs` programs exist without splitting; `program_slots` is how many the GPU runs at
    once. Split only when that leaves the GPU short of work, and keep each split at least
    MIN_BLOCKS_PER_SPLIT key blocks long. Returns (splits, keys_per_split), keys_per_split a
    multiple of block_n.
    """
    key_blocks = triton.cdiv(max(max_seqlen_k, 1), block_n)
    splits = 1
    if query_programs < program_slots:
        splits = min(triton.cdiv(program_slots, query_programs), MAX_KEY_SPLITS,
                     max(1, key_blocks // MIN_BLOCKS_PER_SPLIT))
    blocks_per_split = triton.cdiv(key_blocks, splits)
    splits = triton.cdiv(key_blocks, blocks_per_split)  # no empty trailing split
    return splits, blocks_per_split * block_n


def all_configs():
    """Every (kernel role, BLOCK_D, arch, is_fp32, Tiles) the launchers can pick: the compile tier's
    list. Head dims sharing a BLOCK_D (80, 96, 128) share their configs."""
    for head_dim in sorted({head_block(d) for d in HEAD_DIMS}):
        for is_fp32 in (False, True):
            for arch in ARCHS:
                yield "forward", head_dim, arch, is_fp32, forward_tiles(head_dim, arch, is_fp32)
                yield "decode", head_dim, arch, is_fp32, decode_tiles(head_dim, is_fp32)
                yield "backward_dkdv", head_dim, arch, is_fp32, backward_dkdv_tiles(head_dim, is_fp32)
                yield "backward_dq", head_dim, arch, is_fp32, backward_dq_tiles(head_dim, is_fp32)
