"""Every launch configuration of the attention kernels compiles for sm_80 and sm_90 without spills.

A configuration is what kernels.attention_settings can hand the launcher: per BLOCK_D (head dims
80 and 96 run in the 128 tile), 16-bit or 32-bit inputs and architecture, the forward, decode,
backward dK/dV and dQ tiles, each with dropout off and on (separate tiles: the Philox keep mask of
a score tile costs many registers), plus the row kernels (split combine, backward delta). Each is
built with every mask feature on: causal and key padding mask together (varlen only changes where
sequence bounds come from). That is not always the hungriest variant: 128x128 tiles with 8 warps at
D=128 on sm_90 kept STACK 0 causal but spilled 96 B with the mask alone (triton 3.6, 2026-11-26),
so the 16-bit forward tiles were also checked with each flag off (attention_settings' comment).
Built as a launch builds them: row strides multiples of 16 and maxnreg (see compile_kernel).
"""

import pytest
from triton_aot import ARCHS, assert_no_spills, compile_kernel

from kernels import attention_settings as settings
from kernels.attention_bwd import (
    attention_bwd_delta_kernel,
    attention_bwd_dkdv_kernel,
    attention_bwd_dq_kernel,
)
from kernels.attention_fwd import attention_fwd_kernel
from kernels.attention_split_combine import attention_split_combine_kernel

KERNELS = {
    "forward": attention_fwd_kernel,
    "decode": attention_fwd_kernel,
    "backward_dkdv": attention_bwd_dkdv_kernel,
    "backward_dq": attention_bwd_dq_kernel,
}
FLOAT32_POINTERS = {"LSE", "DELTA", "OUT_PARTIAL", "LSE_PARTIAL"}
INT32_POINTERS = {"KEY_BOUNDS", "CU_SEQLENS_Q", "CU_SEQLENS_K"}
FLOAT_SCALARS = {"qk_scale_log2", "scale", "dropout_p", "dropout_scale"}


def attention_types(fn, elem):
    types = {}
    for name in fn.arg_names:
        if name in FLOAT32_POINTERS:
            types[name] = "*fp32"
        elif name in INT32_POINTERS:
            types[name] = "*i32"
        elif name == "KEY_MASK":
            types[name] = "*u8"
        elif name in FLOAT_SCALARS:
            types[name] = "fp32"
        elif name == "seed":
            types[name] = "i64"
        elif name.isupper():
            types[name] = f"*{elem}"
        else:
            types[name] = "i32"
    return types


def row_strides(fn):
    """The strides of the [..., head_dim] tensors: multiples of 16 at a launch (the launcher copies
    a tensor whose strides are not), so Triton vectorises the tile loads."""
    return [name for name in fn.arg_names
            if name.startswith("stride_") and not name.startswith(("stride_lse", "stride_mask"))]


def tile_variants():
    """One test per distinct compile: forward and decode share a kernel, so a decode entry equal to
    a forward entry (same BLOCK_D, dtype, dropout, arch and tiles) is compiled once."""
    seen = set()
    for role, block_d, arch, is_fp32, dropout, tiles in settings.all_configs():
        dtype = "fp32" if is_fp32 else "bf16"
        key = (KERNELS[role], block_d, arch, dtype, dropout, tiles)
        if key in seen:
            continue
        seen.add(key)
        drop = "dropout" if dropout else "nodropout"
        label = (f"{role}-d{block_d}-{dtype}-{drop}-sm_{arch}-"
                 f"{tiles.block_m}x{tiles.block_n}w{tiles.num_warps}s{tiles.num_stages}")
        yield label, (role, block_d, arch, dtype, dropout, tiles)


TILE_VARIANTS = dict(tile_variants())


@pytest.mark.parametrize("variant", list(TILE_VARIANTS))
def test_attention_tiles_compile_without_spills(variant):
    role, block_d, arch, dtype, dropout, tiles = TILE_VARIANTS[variant]
    fn = KERNELS[role]
    constexprs = {"CAUSAL": True, "HAS_KEY_MASK": True, "VARLEN": False, "HAS_DROPOUT": dropout,
                  "DOT_PRECISION": "tf32x3" if dtype == "fp32" else "tf32", "HEAD_DIM": block_d,
                  "BLOCK_M": tiles.block_m, "BLOCK_N": tiles.block_n, "BLOCK_D": block_d}
    compiled = compile_kernel(fn, attention_types(fn, dtype), constexprs, arch, tiles.num_warps,
                              num_stages=tiles.num_stages, divisible=row_strides(fn),
                              maxnreg=settings.MAX_REGISTERS)
    usage = assert_no_spills(compiled, arch, f"attention {variant}")
    print(f"{variant}: REG {usage['REG']} shared {compiled.metadata.shared}")


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"sm_{a}")
@pytest.mark.parametrize("block_d", sorted({settings.head_block(d) for d in settings.HEAD_DIMS}))
@pytest.mark.parametrize("kernel", ["combine", "delta"])
def test_attention_row_kernels_compile_without_spills(kernel, block_d, arch):
    if kernel == "combine":
        fn, rows, warps = (attention_split_combine_kernel, settings.COMBINE_BLOCK_ROWS,
                           settings.COMBINE_WARPS)
    else:
        fn, rows, warps = attention_bwd_delta_kernel, settings.DELTA_BLOCK_ROWS, settings.DELTA_WARPS
    compiled = compile_kernel(fn, attention_types(fn, "bf16"),
                              {"BLOCK_ROWS": rows, "BLOCK_D": block_d}, arch, warps)
    assert_no_spills(compiled, arch, f"attention {kernel} d{block_d}")
