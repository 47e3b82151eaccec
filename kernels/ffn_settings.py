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
  twice the bytes per element in shared memory, fewer stages. On sm_80 the plain GEMMs take
  BLOCK_K 16: at 32, 3-pass TF32 took 254-255 registers and spilled 8 B under triton 3.8 wherever
  M, N or K did not fill its blocks (EVEN_* off, a variant the compile tier built from 2026-12-08
  on); at 16, 139-168 registers.
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
    # The persistent TMA kernel (kernels/ffn_matmul_tma.py) instead of the pointer kernel: sm_90
    # and newer, 16-bit operands whose strides TMA takes; other launches keep the pointer kernel.
    tma: bool = False


# Which epilogue a launch runs decides its tiles: the GELU derivative (dA) and the dropout of the
# down projection (a Philox draw per element) hold more registers than the rest (bias, bias + GELU,
# none), which spill at tiles the rest take (sm_90 screening, triton 3.6, 2026-11-26: 128x128x64
# with 8 warps is spill-free for the up projection and the plain GEMMs, 240-246 registers, and
# spills 480 B with dropout and 16 B with the GELU derivative). benchmarks/tune_ffn.py times the
# kinds' candidates on a GPU.
PLAIN, DROPOUT, GELU_GRAD = "plain", "dropout", "gelu_grad"
KINDS = (PLAIN, DROPOUT, GELU_GRAD)

# (arch, is_fp32, gelu_grad epilogue) -> Tiles
_TILES = {
    (80, False, False): Tiles(128, 128, 32, 8, 8, 4),
    (90, False, False): Tiles(128, 64, 64, 8, 8, 4),
    (80, False, True): Tiles(128, 64, 64, 8, 8, 4),
    (90, False, True): Tiles(128, 64, 64, 8, 8, 4),
    (80, True, False): Tiles(64, 64, 16, 8, 4, 3),
    (90, True, False): Tiles(64, 64, 32, 8, 4, 3),
    (80, True, True): Tiles(64, 64, 32, 8, 4, 3),
    (90, True, True): Tiles(64, 64, 32, 8, 4, 3),
}
# (arch, is_fp32) -> Tiles of the down projection with dropout, where they differ from _TILES's
# plain entry (none yet: the plain tiles were chosen to fit the dropout epilogue too).
_DROPOUT_TILES = {}


# Candidates of the persistent TMA kernel, per epilogue kind, that benchmarks/tune_ffn.py times
# beside the tiles above; none is chosen until a GPU has measured it. Screened ahead of time
# (2026-11-26, sm_90, bf16, triton 3.6 and 3.8, every epilogue and operand layout of the kind; the
# compile tier keeps checking them): spill-free, every product on wgmma, every load a TMA copy.
# Rejected for spilling: 128x256x64/8 warps with the GELU epilogue (376-392 B; 184-264 B still
# with the 16-bit erfc form). 128x128x64 with the GELU derivative spilled 8-56 B with tl.erf; with
# the erfc form (2026-11-27) it takes 208-212 registers under triton 3.8, 243 under 3.6, no spills.
TMA_CANDIDATES = {
    PLAIN: (Tiles(128, 128, 64, 8, 8, 3, True), Tiles(128, 128, 64, 8, 8, 4, True),
            Tiles(128, 64, 64, 8, 8, 4, True)),
    GELU_GRAD: (Tiles(128, 64, 64, 8, 8, 3, True), Tiles(128, 64, 64, 8, 8, 4, True),
                Tiles(128, 128, 64, 8, 8, 3, True), Tiles(128, 128, 64, 8, 8, 4, True)),
    DROPOUT: (Tiles(128, 128, 64, 8, 8, 3, True), Tiles(128, 64, 64, 8, 8, 4, True)),
}


def _arch_key(arch):
    # Anything newer than Hopper takes Hopper's tiles (the compile tier checks 80 and 90 only).
    return 90 if arch >= 90 else 80


def epilogue_kind(gelu_grad, dropout):
    return GELU_GRAD if gelu_grad else (DROPOUT if dropout else PLAIN)


def tiles_for_kind(arch, is_fp32, kind):
    key = (_arch_key(arch), bool(is_fp32))
    if kind == DROPOUT and key in _DROPOUT_TILES:
        return _DROPOUT_TILES[key]
    return _TILES[key + (kind == GELU_GRAD,)]


def matmul_tiles(arch, is_fp32, gelu_grad, dropout=False):
    """The tiles of one launch: `gelu_grad` for dA's epilogue, `dropout` for the down projection's
    with dropout (training), neither for the rest."""
    return tiles_for_kind(arch, is_fp32, epilogue_kind(gelu_grad, dropout))


def all_tiles():
    """(arch, is_fp32, epilogue kind, Tiles) for every configuration the launcher can pick."""
    for arch in ARCHS:
        for is_fp32 in (False, True):
            for kind in KINDS:
                yield arch, is_fp32, kind, tiles_for_kind(arch, is_fp32, kind)
