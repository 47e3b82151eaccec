"""Every launch configuration of the Triton bias + GELU kernels compiles for sm_80 and sm_90 without
spills: one tile per power-of-two column block kernels.bias_gelu.tile_settings can choose, both
GELU forms, in a 16-bit and the 32-bit dtype."""

import pytest
from triton_aot import ARCHS, assert_no_spills, compile_kernel

from kernels import bias_gelu as bg

DTYPES = ["bf16", "fp32"]


def gelu_types(elem):
    types = {name: f"*{elem}" for name in ("X", "BIAS", "OUT", "DY", "DX")}
    types["DBIAS_PARTIAL"] = "*fp32"
    types.update({name: "i32" for name in ("n_rows", "n_cols", "rows_per_program")})
    for fn in (bg.bias_gelu_fwd_kernel, bg.bias_gelu_bwd_kernel):
        types.update({name: "i32" for name in fn.arg_names if name.startswith("stride_")})
    return types


def gelu_variants():
    """(label, kernel, constexprs, num_warps) for every configuration the launcher can choose."""
    n_cols = bg.MIN_BLOCK_N
    while n_cols <= bg.MAX_BLOCK_N:
        block_m, block_n, warps = bg.tile_settings(n_cols)
        for approximate, tanh in (("erf", False), ("tanh", True)):
            flags = {"TANH": tanh, "BLOCK_M": block_m, "BLOCK_N": block_n}
            yield f"fwd-{approximate}-{block_m}x{block_n}", bg.bias_gelu_fwd_kernel, flags, warps
            yield f"bwd-{approximate}-{block_m}x{block_n}", bg.bias_gelu_bwd_kernel, flags, warps
        n_cols *= 2


VARIANTS = {label: rest for label, *rest in gelu_variants()}


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"sm_{a}")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_bias_gelu_compiles_without_spills(variant, dtype, arch):
    fn, constexprs, num_warps = VARIANTS[variant]
    compiled = compile_kernel(fn, gelu_types(dtype), constexprs, arch, num_warps)
    usage = assert_no_spills(compiled, arch, f"bias_gelu {variant} {dtype}")
    print(f"bias_gelu {variant} {dtype} sm_{arch}: {usage}")
