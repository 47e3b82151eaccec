"""Every launch configuration of the Triton masked softmax kernels compiles for sm_80 and sm_90
without spills: one (BLOCK_N, num_warps) per power-of-two row up to kernels.masked_softmax's
MAX_ROW_BLOCK, and the long-row kernels, with and without the padding mask and causality (every
combination: triton_aot.flag_variants), in a 16-bit and the 32-bit dtype."""

import pytest
from triton_aot import ARCHS, build_table_entry, check_usage, flag_variants

from kernels import masked_softmax as ms

DTYPES = ["bf16", "fp32"]


def softmax_types(elem):
    types = {name: f"*{elem}" for name in ("X", "Y", "DY", "DX")}
    types["MASK"] = "*i1"
    types.update({name: "fp32" for name in ("scale_log2", "scale")})
    types.update({name: "i32" for name in ("n_cols", "rows_per_batch", "queries")})
    for fn in (ms.masked_softmax_fwd_kernel, ms.masked_softmax_bwd_kernel):
        types.update({name: "i32" for name in fn.arg_names if name.startswith("stride_")})
    return types


def softmax_variants():
    """(label, kernel, constexprs, num_warps) for every configuration the launcher can choose."""
    lengths = [1 << i for i in range(ms.MAX_ROW_BLOCK.bit_length())] + [ms.MAX_ROW_BLOCK + 1]
    for n_cols in lengths:
        block, warps, long_row = ms.launch_settings(n_cols)
        fwd = ms.masked_softmax_fwd_long_row_kernel if long_row else ms.masked_softmax_fwd_kernel
        bwd = ms.masked_softmax_bwd_long_row_kernel if long_row else ms.masked_softmax_bwd_kernel
        shape = "long-row" if long_row else f"block{block}"
        for suffix, flags in flag_variants(("HAS_MASK", "CAUSAL")):
            yield f"fwd-{shape}-{suffix}", fwd, dict(flags, BLOCK_N=block), warps
        yield f"bwd-{shape}", bwd, {"BLOCK_N": block}, warps


VARIANTS = {label: rest for label, *rest in softmax_variants()}


def build_variant(key):
    return build_table_entry(VARIANTS, softmax_types, key)


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"sm_{a}")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_masked_softmax_compiles_without_spills(variant, dtype, arch, variant_reports):
    report = variant_reports[variant, dtype, arch].result()
    check_usage(report["usage"], report["shared"], arch, f"masked_softmax {variant} {dtype}")
    print(f"masked_softmax {variant} {dtype} sm_{arch}: {report['usage']}")
