"""Every launch configuration of the attention kernels compiles for sm_80 and sm_90 without spills,
and the sm_90 16-bit tiles that kernels.attention_settings.uses_wgmma names lower every tl.dot to
warpgroup MMA (wgmma.mma_async in the PTX, no mma.sync).

A configuration is what kernels.attention_settings can hand the launcher: per BLOCK_D, 16-bit or
32-bit inputs and architecture, the forward, decode, backward dK/dV and dQ tiles, each with dropout
off and on, plus the row kernels (split combine, backward delta). Within a configuration a launch
still compiles one kernel per value of the other compile-time arguments:
- CAUSAL x (dense, HAS_KEY_MASK, VARLEN): attention() gives causal x key mask, attention_varlen()
  causal x varlen (it takes no key mask): six flag variants;
- HEAD_DIM: every head dim that runs in the tile (80, 96 and 128 share BLOCK_D 128 and differ in
  the column mask).
No one variant is always the hungriest, so every configuration is built in every variant: 128x64
D=128 dropout tiles on sm_80 spilled 8-48 B in five of the six flag variants but not with causal +
key mask, the one this tier used to build, and the D=64 dK/dV tile spilled 32 B causal without a
mask (triton 3.6, 2026-11-26); under triton 3.8, D=80/96 128x32 forward tiles spilled 8 B only in
the non-causal varlen variant. Float32 configurations were built in causal + key mask alone until
2026-12-08 (each costs 2-3 times a 16-bit one: 3-pass TF32 triples the dots); building them in all
six found 8 B spills in five tiles that variant had passed (float32 forward D=32 and D=80-128 with
dropout, dQ D=64 and D=80-128 without; kernels.attention_settings says which tiles replaced them).
float32 configurations build twice: with 3-pass TF32 dots (the default) and with 1-pass TF32
("tf32" builds, where the user allowed TF32 in torch), which also covers the tiles SPILLING
switches off under 3-pass. About 1850 compiles per triton.
Built as a launch builds them: row strides multiples of 16 and maxnreg (see compile_kernel). The
builds run in parallel worker processes (triton_aot.parallel_builds, one per CPU): cold, on our
2-core machine (2026-11-26), the 756 tests took 6.0 minutes under triton 3.8 and 5.1 under triton
3.6 (7-10 minutes while another build shared the cores); the ~890 float32 builds added on 2026-12-08
took 7.4 and 6.3 minutes more.
"""

import re
from typing import NamedTuple

import pytest
from triton_aot import (
    ARCHS,
    assert_no_spills,
    build_usage,
    check_usage,
    compile_kernel,
)

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
    # With ATOMIC_DQ, for non-causal and causal calls (their own tiles).
    settings.ATOMIC_DQ_ROLES[0]: attention_bwd_dkdv_kernel,
    settings.ATOMIC_DQ_ROLES[1]: attention_bwd_dkdv_kernel,
}
FLOAT32_POINTERS = {"LSE", "DELTA", "OUT_PARTIAL", "LSE_PARTIAL", "DQ_ACCUMULATOR"}
INT32_POINTERS = {"KEY_BOUNDS", "BATCH_ORDER", "CU_SEQLENS_Q", "CU_SEQLENS_K"}
FLOAT_SCALARS = {"qk_scale_log2", "scale", "dropout_p", "dropout_scale"}

# (CAUSAL, HAS_KEY_MASK, VARLEN) of every launch: attention() and attention_varlen().
FLAG_VARIANTS = tuple((causal, mask, varlen) for causal in (False, True)
                      for mask, varlen in ((False, False), (True, False), (False, True)))


# Build.dtype -> (element type, tl.dot input_precision): float32 inputs compile twice, with
# full-float32 3-pass TF32 dots (the default) and, as "tf32", with the 1-pass TF32 dots a launch
# takes where the user allowed TF32 in torch (fastattn.backends._attention_layout.dot_precision).
DTYPES = {"bf16": ("bf16", "tf32"), "fp32": ("fp32", "tf32x3"), "tf32": ("fp32", "tf32")}


class Build(NamedTuple):
    role: str
    head_dim: int
    arch: int
    dtype: str  # a DTYPES key
    dropout: bool
    tiles: settings.Tiles
    causal: bool
    key_mask: bool
    varlen: bool
    grads: str = "dk+dv"  # dK/dV kernels: what the launch computes (WANT_DK, WANT_DV)


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


def _label(b):
    flags = ("causal" if b.causal else "full") + ("+mask" if b.key_mask else "+varlen" if b.varlen else "")
    tiles = f"{b.tiles.block_m}x{b.tiles.block_n}w{b.tiles.num_warps}s{b.tiles.num_stages}"
    drop = "dropout" if b.dropout else "nodropout"
    grads = "" if b.grads == "dk+dv" else f"-{b.grads}only"
    return f"{b.role}{grads}-hd{b.head_dim}-{b.dtype}-{drop}-sm_{b.arch}-{tiles}-{flags}"


def _separate_grads(build):
    """The build as launched: where dV and dK get a launch each
    (kernels.attention_settings.dkdv_separate_dv), one build per launch."""
    elem, precision = DTYPES[build.dtype]
    if KERNELS[build.role] is attention_bwd_dkdv_kernel and settings.dkdv_separate_dv(
            build.head_dim, elem == "fp32", build.dropout, precision):
        return [build._replace(grads="dv"), build._replace(grads="dk")]
    return [build]


def builds():
    """{label: Build}, one per distinct compile: forward and decode share a kernel, so a decode
    entry equal to a forward entry is built once."""
    table, seen = {}, set()
    configs = [(config, "fp32" if config[3] else "bf16") for config in settings.all_configs()]
    configs += [(config, "tf32") for config in settings.tf32_configs()]
    for (role, block_d, arch, is_fp32, dropout, tiles), dtype in configs:
        head_dims = [d for d in settings.HEAD_DIMS if settings.head_block(d) == block_d]
        for head_dim in head_dims:
            for flags in FLAG_VARIANTS:
                build = Build(role, head_dim, arch, dtype, dropout, tiles, *flags)
                if role in settings.ATOMIC_DQ_ROLES and (
                        flags[0] != role.endswith("causal") or settings.backward_atomic_dq_tiles(
                            head_dim, arch, is_fp32, dropout, flags[0]) != tiles):
                    continue  # built for the calls (causal or not, head dims) that launch them
                for launched in _separate_grads(build):
                    key = (KERNELS[role], role in settings.ATOMIC_DQ_ROLES) + launched[1:]
                    if key not in seen:
                        seen.add(key)
                        table[_label(launched)] = launched
    return table


BUILDS = builds()


def compile_build(label):
    """The compiled kernel of one variant, built as a launch builds it."""
    b = BUILDS[label]
    fn = KERNELS[b.role]
    elem, precision = DTYPES[b.dtype]
    constexprs = {"CAUSAL": b.causal, "HAS_KEY_MASK": b.key_mask, "VARLEN": b.varlen,
                  "HAS_DROPOUT": b.dropout, "DOT_PRECISION": precision,
                  "HEAD_DIM": b.head_dim, "BLOCK_M": b.tiles.block_m, "BLOCK_N": b.tiles.block_n,
                  "BLOCK_D": settings.head_block(b.head_dim)}
    # The atomic-dQ roles are dK/dV kernels.
    kernel_role = "backward_dkdv" if b.role in settings.ATOMIC_DQ_ROLES else b.role
    constexprs["D_CHUNK"] = settings.head_chunk(kernel_role, constexprs["BLOCK_D"], precision)
    if fn is attention_bwd_dkdv_kernel:
        constexprs["KEYS_AS_ROWS"] = settings.dkdv_keys_as_rows(b.head_dim, b.arch,
                                                                elem == "fp32", b.dropout)
        constexprs["ATOMIC_DQ"] = b.role in settings.ATOMIC_DQ_ROLES
        constexprs["WANT_DK"], constexprs["WANT_DV"] = "dk" in b.grads, "dv" in b.grads
    return compile_kernel(fn, attention_types(fn, elem), constexprs, b.arch, b.tiles.num_warps,
                          num_stages=b.tiles.num_stages, divisible=row_strides(fn),
                          maxnreg=settings.MAX_REGISTERS)


BUILD_KEY = ("variant",)  # of the conftest's variant_reports


def build_variant(label):
    """Compiles one variant (in a worker process) and reports what the test checks."""
    kernel = compile_build(label)
    ptx = kernel.asm["ptx"]
    return dict(build_usage(kernel), wgmma=ptx.count("wgmma.mma_async"),
                mma_sync=ptx.count("mma.sync"),
                atomics=re.findall(r"\b(?:atom|red)\.global[\w.]*", ptx))


@pytest.mark.parametrize("variant", list(BUILDS))
def test_attention_tiles_compile_without_spills(variant, variant_reports):
    b = BUILDS[variant]
    report = variant_reports[variant].result()
    check_usage(report["usage"], report["shared"], b.arch, f"attention {variant}")
    if b.arch >= 90 and b.dtype == "bf16" and settings.uses_wgmma(
            b.role, settings.head_block(b.head_dim), b.dropout):
        assert report["wgmma"] and not report["mma_sync"], (
            f"attention {variant}: expected every tl.dot as wgmma, PTX has {report['wgmma']} "
            f"wgmma.mma_async and {report['mma_sync']} mma.sync")


@pytest.mark.parametrize("variant", [label for label, b in BUILDS.items()
                                     if b.role in settings.ATOMIC_DQ_ROLES])
def test_atomic_dq_adds_are_relaxed_four_wide(variant, variant_reports):
    """The dQ adds of the atomic-dQ backward: relaxed (acq_rel, tl.atomic_add's default, would fence
    every add) and four float32 a instruction (sm_90's v4 atomics; SASS REDG.E.ADD.F32x4, as the
    result is unused), so that they cost a quarter of the instructions of scalar adds."""
    atomics = variant_reports[variant].result()["atomics"]
    assert atomics, f"attention {variant}: no atomic add in the PTX"
    odd = [a for a in atomics if ".relaxed" not in a or not a.endswith(".add.v4.f32")]
    assert not odd, f"attention {variant}: atomics not relaxed four-wide float32 adds: {odd}"


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"sm_{a}")
@pytest.mark.parametrize("block_d", sorted({settings.head_block(d) for d in settings.HEAD_DIMS}))
def test_attention_delta_kernel_compiles_without_spills(block_d, arch):
    fn = attention_bwd_delta_kernel
    compiled = compile_kernel(fn, attention_types(fn, "bf16"),
                              {"BLOCK_ROWS": settings.DELTA_BLOCK_ROWS, "BLOCK_D": block_d}, arch,
                              settings.DELTA_WARPS)
    assert_no_spills(compiled, arch, f"attention delta d{block_d}")


# Every tile the split combine can take: each power-of-two split count up to MAX_KEY_SPLITS, each
# head dim (its HEAD_DIM is compile-time).
COMBINE_SPLITS = tuple(1 << i for i in range(1, settings.MAX_KEY_SPLITS.bit_length()))


def compile_combine(splits, head_dim, arch):
    """The split combine as the launcher builds it for `splits` splits of a `head_dim` row."""
    fn = attention_split_combine_kernel
    tiles = settings.combine_tiles(splits, head_dim)
    return compile_kernel(fn, attention_types(fn, "bf16"),
                          {"HEAD_DIM": head_dim, "BLOCK_SPLITS": tiles.block_splits,
                           "BLOCK_ROWS": tiles.block_rows,
                           "BLOCK_D": settings.head_block(head_dim)},
                          arch, tiles.num_warps)


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"sm_{a}")
@pytest.mark.parametrize("head_dim", settings.HEAD_DIMS)
def test_attention_split_combine_compiles_without_spills(head_dim, arch):
    assert COMBINE_SPLITS[-1] == settings.MAX_KEY_SPLITS
    for splits in COMBINE_SPLITS:
        assert_no_spills(compile_combine(splits, head_dim, arch), arch,
                         f"attention split combine d{head_dim} "
                         f"{settings.combine_tiles(splits, head_dim)}")
