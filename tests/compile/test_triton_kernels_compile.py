"""Every launch configuration of the Triton kernels compiles for sm_80 and sm_90 without spills.

A configuration is what the launcher can pick: one (BLOCK_N, num_warps) per power-of-two row block
up to the limit (kernels.row_settings) and the wide-row backward, in every on/off combination of
the optional features (residual, dropout, stored h; the backward's dh_out and dropout), in a 16-bit
and the 32-bit dtype. Until 2026-12-08 only the variant with every feature on was built, as the
presumed hungriest: the forward at 16384 columns spilled without dropout, at 8192 without a
residual (kernels.row_settings)."""

import pytest
from triton_aot import (
    ARCHS,
    build_table_entry,
    check_usage,
    compile_kernel,
    cubin_sass,
    flag_variants,
)

from kernels import layer_norm_residual as lnr
from kernels.row_settings import (
    MAX_ROW_BLOCK,
    WIDE_ROW_CHUNK,
    WIDE_ROW_CHUNK_WARPS,
    backward_row_block_settings,
    row_block_settings,
)

ROW_BLOCKS = [1 << i for i in range(MAX_ROW_BLOCK.bit_length())]
DTYPES = ["bf16", "fp32"]


def lnr_types(elem):
    element_ptrs = {"X", "RESIDUAL", "WEIGHT", "BIAS", "Y", "H_OUT", "DY", "DH_OUT", "H", "DH", "DX"}
    float32_ptrs = {"MEAN", "RSTD", "DW_PARTIAL", "DB_PARTIAL"}
    types = {name: f"*{elem}" for name in element_ptrs}
    types.update({name: "*fp32" for name in float32_ptrs})
    types.update({name: "fp32" for name in ("eps", "dropout_p", "dropout_scale")})
    types.update({name: "i32" for name in ("n_rows", "n_cols", "rows_per_program")})
    types["seed"] = "i64"
    types["ROW_SUMS"] = "*fp32"
    for fn in (lnr.layer_norm_residual_fwd_kernel, lnr.layer_norm_residual_bwd_kernel):
        types.update({name: "i32" for name in fn.arg_names if name.startswith("stride_")})
    return types


FORWARD_FLAGS = ("HAS_RESIDUAL", "HAS_DROPOUT", "STORE_H")
BACKWARD_FLAGS = ("HAS_DH_OUT", "HAS_DROPOUT")


def lnr_variants():
    """(label, kernel, constexprs, num_warps) for every configuration the launcher can choose."""
    for block in ROW_BLOCKS:
        block_n, warps = row_block_settings(block)
        for suffix, flags in flag_variants(FORWARD_FLAGS):
            yield (f"fwd-block{block_n}-{suffix}", lnr.layer_norm_residual_fwd_kernel,
                   dict(flags, BLOCK_N=block_n, CHUNKED=False), warps)
        settings = backward_row_block_settings(block)
        if settings is not None:
            for suffix, flags in flag_variants(BACKWARD_FLAGS):
                yield (f"bwd-block{settings[0]}-{suffix}", lnr.layer_norm_residual_bwd_kernel,
                       dict(flags, ROW_SUMS_GIVEN=False, BLOCK_N=settings[0]), settings[1])
    for suffix, flags in flag_variants(FORWARD_FLAGS):
        yield (f"fwd-wide-chunks-{suffix}", lnr.layer_norm_residual_fwd_kernel,
               dict(flags, BLOCK_N=WIDE_ROW_CHUNK, CHUNKED=True), WIDE_ROW_CHUNK_WARPS)
    yield ("bwd-wide-row-sums", lnr.layer_norm_residual_bwd_row_sums_kernel,
           {"BLOCK_C": WIDE_ROW_CHUNK}, WIDE_ROW_CHUNK_WARPS)
    for suffix, flags in flag_variants(BACKWARD_FLAGS):
        yield (f"bwd-wide-column-blocks-{suffix}", lnr.layer_norm_residual_bwd_kernel,
               dict(flags, ROW_SUMS_GIVEN=True, BLOCK_N=WIDE_ROW_CHUNK), WIDE_ROW_CHUNK_WARPS)


LNR_VARIANTS = {label: rest for label, *rest in lnr_variants()}


def test_the_front_sets_no_triton_hidden_limit():
    """Rows wider than MAX_ROW_BLOCK take the chunked kernels, so fastattn's dispatch must not
    refuse triton for a hidden size (checked by source text: importing fastattn needs torch, which
    this tier does not have)."""
    import pathlib
    import re
    front = pathlib.Path(__file__).parents[2] / "fastattn" / "ops" / "layer_norm_residual.py"
    limits = re.search(r"^MAX_HIDDEN = (\{.*\})$", front.read_text(), re.MULTILINE)
    assert limits and "triton" not in limits.group(1)


def build_variant(key):
    return build_table_entry(LNR_VARIANTS, lnr_types, key)


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"sm_{a}")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", list(LNR_VARIANTS))
def test_layer_norm_residual_compiles_without_spills(variant, dtype, arch, variant_reports):
    report = variant_reports[variant, dtype, arch].result()
    check_usage(report["usage"], report["shared"], arch, f"layer_norm_residual {variant} {dtype}")


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"sm_{a}")
def test_layer_norm_backward_row_loop_is_pipelined(arch):
    """The row loop (tl.range with num_stages) copies the next row's inputs with cp.async (LDGSTS
    in SASS) while a row computes; with a plain loop (or a Triton that ignored num_stages there)
    each row would wait out its own loads (benchmarks/results/NOTES.md, 2026-11-27)."""
    fn, constexprs, num_warps = LNR_VARIANTS["bwd-block1024-has_dh_out"]
    compiled = compile_kernel(fn, lnr_types("bf16"), dict(constexprs, HAS_DROPOUT=False), arch,
                              num_warps, divisible=[name for name in fn.arg_names
                                                    if name.startswith("stride_")])
    assert "LDGSTS" in cubin_sass(compiled.asm["cubin"])
