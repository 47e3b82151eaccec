"""Every tile configuration of the FFN GEMM compiles for sm_80 and sm_90 without spills, with each
epilogue the launcher uses: the up projection (bias + GELU, pre-activation stored), the down
projection (bias + dropout), dA (GELU derivative + bias-gradient column sums) and the plain GEMM of
the other gradients (in both operand layouts it meets). The erf GELU is built everywhere (the
longer one), tanh on the up projection too. 16-bit configurations build in bfloat16, float32 ones
twice, with each dot a float32 launch takes (fastattn.backends._attention_layout.dot_precision):
3-pass TF32 ("tf32x3", full float32 accuracy, the default) and 1-pass "tf32" (where the user allowed
TF32 in torch). Strides are the hot path's: multiples of 16, as BERT/GPT2 widths give (see
compile_aligned_gemm). Dimensions that fill their blocks or not: each of EVEN_M, EVEN_N, EVEN_K on
and off (a token count that is not a multiple of BLOCK_M is common); until 2026-12-08 only the
variant with all three on was built, and the float32 plain GEMM on sm_80 spilled 8 B whenever one
was off (kernels.ffn_settings). Not built: strides that are not multiples of 16 (hidden 37, 1023),
correct but slow: there the up projection on sm_80 spills 32-48 B (2026-12-08, triton 3.8).
"""

import pytest
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from triton_aot import (
    assert_no_spills,
    build_usage,
    check_usage,
    compile_kernel,
    flag_variants,
    signature,
)

from kernels import ffn_settings as settings
from kernels.ffn_dropout import BLOCK_M, BLOCK_N, NUM_WARPS, ffn_dropout_bwd_kernel
from kernels.ffn_matmul import ffn_matmul_kernel
from kernels.ffn_matmul_tma import ffn_matmul_tma_kernel

OFF = {"HAS_BIAS": False, "APPLY_GELU": False, "STORE_PRE": False, "GELU_GRAD": False,
       "TANH": False, "HAS_DROPOUT": False}
# Which stride is 1 in each GEMM (Triton specialises unit strides, so a launch compiles this way):
# "NT" = row-major A times an nn.Linear weight read transposed (x @ W1^T, H @ W2^T), "NN" = both
# row-major (dY' @ W2, dA @ W1), "TN" = a transposed activation as A (dY'^T @ H, dA^T @ x).
UNIT_STRIDES = {"NT": {"stride_ak": 1, "stride_bk": 1}, "NN": {"stride_ak": 1, "stride_bn": 1},
                "TN": {"stride_am": 1, "stride_bn": 1}}
# name -> (constexpr flags, operand layout, the tiles' epilogue kind in kernels.ffn_settings)
EPILOGUES = {
    "up": (dict(OFF, HAS_BIAS=True, APPLY_GELU=True, STORE_PRE=True), "NT", settings.PLAIN),
    "up_tanh": (dict(OFF, HAS_BIAS=True, APPLY_GELU=True, STORE_PRE=True, TANH=True), "NT",
                settings.PLAIN),
    "down": (dict(OFF, HAS_BIAS=True), "NT", settings.PLAIN),
    "down_dropout": (dict(OFF, HAS_BIAS=True, HAS_DROPOUT=True), "NT", settings.DROPOUT),
    "gelu_grad": (dict(OFF, GELU_GRAD=True), "NN", settings.GELU_GRAD),
    "plain_NN": (OFF, "NN", settings.PLAIN),
    "plain_TN": (OFF, "TN", settings.PLAIN),
}


def matmul_types(elem):
    types = {name: f"*{elem}" for name in ("A", "B", "BIAS", "PRE", "C")}
    types["DBIAS_PARTIAL"] = "*fp32"
    types.update({name: "i32" for name in ffn_matmul_kernel.arg_names
                  if name in ("M", "N", "K") or name.startswith("stride_")})
    types.update({"dropout_p": "fp32", "dropout_scale": "fp32", "seed": "i64"})
    return types


def compile_aligned_gemm(types, constexprs, arch, num_warps, num_stages):
    """triton_aot.compile_kernel, plus what a launch on BERT/GPT2 shapes (hidden 768, 1024, 3072,
    4096) specialises on: every non-unit stride a multiple of 16 elements. Without it Triton cannot
    prove 16-byte rows, loads go scalar and the pipeline is not built: the variant odd hidden sizes
    (37, 1023) get, correct but slow, and not the hot path this tier guards."""
    fn = ffn_matmul_kernel
    sig = signature(fn, types, constexprs)
    divisible = {(i,): [["tt.divisibility", 16]] for i, name in enumerate(fn.arg_names)
                 if sig[name] != "constexpr" and (sig[name].startswith("*") or name.startswith("stride_"))}
    source = ASTSource(fn, sig, constexprs, divisible)
    return triton.compile(source, target=GPUTarget("cuda", arch, 32),
                          options={"num_warps": num_warps, "num_stages": num_stages})


# (element type, tl.dot input_precision) of each kind of launch.
PRECISIONS = {False: (("bf16", "tf32"),), True: (("fp32", "tf32x3"), ("fp32", "tf32"))}


def variants():
    for arch, is_fp32, kind, tiles in settings.all_tiles():
        for elem, precision in PRECISIONS[is_fp32]:
            for epilogue, (_, _, epilogue_kind) in EPILOGUES.items():
                if epilogue_kind != kind:
                    continue
                for fill, even in flag_variants(("EVEN_M", "EVEN_N", "EVEN_K")):
                    label = (f"{epilogue}-{elem}-{precision}-sm_{arch}-{tiles.block_m}x"
                             f"{tiles.block_n}x{tiles.block_k}w{tiles.num_warps}"
                             f"s{tiles.num_stages}-{fill}")
                    yield label, (arch, elem, precision, epilogue, tiles, even)


VARIANTS = dict(variants())
BUILD_KEY = ("variant",)  # of the conftest's variant_reports


def compile_variant(variant):
    arch, elem, precision, epilogue, tiles, even = VARIANTS[variant]
    flags, layout, _ = EPILOGUES[epilogue]
    constexprs = dict(flags, **UNIT_STRIDES[layout], **even, DOT_PRECISION=precision,
                      BLOCK_M=tiles.block_m, BLOCK_N=tiles.block_n, BLOCK_K=tiles.block_k,
                      GROUP_M=tiles.group_m)
    return compile_aligned_gemm(matmul_types(elem), constexprs, arch, tiles.num_warps,
                                tiles.num_stages)


def build_variant(variant):
    return build_usage(compile_variant(variant))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_ffn_matmul_compiles_without_spills(variant, variant_reports):
    report = variant_reports[variant].result()
    check_usage(report["usage"], report["shared"], VARIANTS[variant][0], f"ffn matmul {variant}")
    print(f"{variant}: REG {report['usage']['REG']} shared {report['shared']}")


@pytest.mark.parametrize("arch", settings.ARCHS, ids=lambda a: f"sm_{a}")
def test_ffn_dropout_bwd_compiles_without_spills(arch):
    types = {"DY": "*bf16", "DY_DROPPED": "*bf16", "M": "i32", "N": "i32", "stride_dy_m": "i32",
             "stride_out_m": "i32", "dropout_p": "fp32", "dropout_scale": "fp32", "seed": "i64"}
    compiled = compile_kernel(ffn_dropout_bwd_kernel, types,
                              {"BLOCK_M": BLOCK_M, "BLOCK_N": BLOCK_N}, arch, NUM_WARPS)
    assert_no_spills(compiled, arch, "ffn dropout backward")


# The persistent TMA kernel's operand forms per layout: (A_KM, B_NK) as the host describes them.
TMA_LAYOUTS = {"NT": (False, True), "NN": (False, False), "TN": (True, False)}


def tma_variants():
    for kind, candidates in settings.TMA_CANDIDATES.items():
        for tiles in candidates:
            for epilogue, (_, _, epilogue_kind) in EPILOGUES.items():
                if epilogue_kind == kind:
                    label = (f"{epilogue}-bf16-sm_90-{tiles.block_m}x{tiles.block_n}x"
                             f"{tiles.block_k}w{tiles.num_warps}s{tiles.num_stages}")
                    yield label, (epilogue, tiles)


TMA_VARIANTS = dict(tma_variants())


def compile_tma_gemm(epilogue, tiles):
    """The TMA kernel as a launch on BERT/GPT2 shapes builds it for sm_90 (16-byte aligned
    pointers and row strides; the operands as TMA descriptors of the layout's tiles)."""
    flags, layout, _ = EPILOGUES[epilogue]
    a_km, b_nk = TMA_LAYOUTS[layout]
    bm, bn, bk = tiles.block_m, tiles.block_n, tiles.block_k
    a_block, b_block = ((bk, bm) if a_km else (bm, bk)), ((bn, bk) if b_nk else (bk, bn))
    types = matmul_types("bf16")
    types.update({"A": "tensordesc<bf16[%d,%d]>" % a_block, "B": "tensordesc<bf16[%d,%d]>" % b_block,
                  "programs": "i32"})
    constexprs = dict(flags, A_KM=a_km, B_NK=b_nk, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk,
                      GROUP_M=tiles.group_m, FLATTEN=True)
    fn = ffn_matmul_tma_kernel
    sig = signature(fn, types, constexprs)
    divisible = {(i,): [["tt.divisibility", 16]] for i, name in enumerate(fn.arg_names)
                 if sig[name].startswith("*") or name.startswith("stride_")}
    source = ASTSource(fn, sig, constexprs, divisible)
    return triton.compile(source, target=GPUTarget("cuda", 90, 32),
                          options={"num_warps": tiles.num_warps, "num_stages": tiles.num_stages})


@pytest.mark.parametrize("variant", list(TMA_VARIANTS))
def test_ffn_matmul_tma_candidates_compile_without_spills_on_wgmma_and_tma(variant):
    """Every candidate of the persistent TMA kernel (ffn_settings.TMA_CANDIDATES) with every
    epilogue and operand layout of its kind: no spills, every product a wgmma, every operand load
    a TMA copy (no pointer loads of A or B)."""
    compiled = compile_tma_gemm(*TMA_VARIANTS[variant])
    usage = assert_no_spills(compiled, 90, f"ffn TMA matmul {variant}")
    ptx = compiled.asm["ptx"]
    assert "wgmma.mma_async" in ptx and "mma.sync" not in ptx, f"{variant}: not on wgmma"
    assert "cp.async.bulk.tensor" in ptx, f"{variant}: operands not loaded by TMA"
    print(f"TMA {variant}: REG {usage['REG']} shared {compiled.metadata.shared}")
