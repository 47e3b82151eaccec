"""One place that decides the tiles of the FFN GEMM kernel (kernels/ffn_matmul.py).

Every configuration here is compiled ahead of time for sm_80 and sm_90 with each epilogue by the
compile tier (tests/compile/test_triton_ffn_compile.py), which fails on register spills.

Why these (not yet measured on a GPU; the benchmark suite benchmarks/test_ffn.py will tell):
- 16-bit on sm_90: 128x64 tiles over 8 warps (two warpgroups, each a 64x64 wgmma), BLOCK_K 64 and
  4 stages keep the tensor cores fed. 128x128 (a 64-register float32 accumulator a thread) spilled
  in the down projection's bias+dropout epilogue under triton 3.6 (255 registers, 480 B stack on
  sm_90; at the 255 limit under 3.8), so the wider tile waits for a GPU measurement and a leaner
  epilogue.
- 16-bit on sm_80: 128x128x32 with 4 warps and 4 stages, the classic A100 tile (cuBLAS's and
  Triton tutorial 03's); 64 KB of shared memory.
- the dA GEMM (GELU-derivative epilogue: erf, exp, the PRE tile and column sums live at once): a
  128x64 tile over 8 warps, half the epilogue registers (128x128 spilled on sm_90); its K loop is
  only the model width (768, 1024) long, so narrower tiles cost little.
- float32 (full-precision "ieee" dots run on the FMA units, TF32 on tensor cores): 64x64 tiles,
  twice the bytes per element in shared memory, fewer stages.
"""

from typing import NamedTuple

ARCHS = (80, 90)


class Tiles(NamedTuple):
    block_m: int
    block_n: int
    block_k: int
    group_m: int
    num_warps: int
    num_stages: int


# (arch, is_fp32, gelu_grad epilogue) -> Tiles
_TILES = {
    (80, False, False): Tiles(128, 128, 32, 8, 8, 4),
    (90, False, False): Tiles(128, 64, 64, 8, 8, 4),
    (80, False, True): Tiles(128, 64, 64, 8, 8, 4),
    (90, False, True): Tiles(128, 64, 64, 8, 8, 4),
    (80, True, False): Tiles(64, 64, 32, 8, 4, 3),
    (90, True, False): Tiles(64, 64, 32, 8, 4, 3),
    (80, True, True): Tiles(64, 64, 32, 8, 4, 3),
    (90, True, True): Tiles(64, 64, 32, 8, 4, 3),
}


def _arch_key(arch):
    # Anything newer than Hopper takes Hopper's tiles (the compile tier checks 80 and 90 only).
    return 90 if arch >= 90 else 80


def matmul_tiles(arch, is_fp32, gelu_grad):
    return _TILES[(_arch_key(arch), bool(is_fp32), bool(gelu_grad))]


def all_tiles():
    """(arch, is_fp32, gelu_grad, Tiles) for every configuration the launcher can pick."""
    for (arch, is_fp32, gelu_grad), tiles in _TILES.items():
        yield arch, is_fp32, gelu_grad, tiles
