"""Static SASS instruction counts of the hot kernels, built for a GPU that is not here: what a
kernel change does to the work of a loop iteration, measured on CPU.

    python tests/compile/sass_report.py [--arch 90] [PATTERN]

Rows: the 16-bit attention tiles at head dims 64 and 128 in every flag variant (forward, decode,
dQ, dK/dV; no dropout), the split combine, the Triton LayerNorm backward, the Triton bias+GELU
kernels at their widest tile, the FFN GEMMs of every epilogue (pointer kernel, and the TMA
candidates on sm_90), and the kernels of the CUDA files in CU_FILES (nvcc).
Each is built as a launch builds it (the compile tier's builders). Columns: registers, stack bytes,
static instructions, MUFU instructions among them (exp2, rcp, ...), and the instructions of each
loop body (triton_aot.sass_counts). PATTERN (a regular expression) keeps the rows whose label
matches; Triton's cache makes a second run fast.

A development tool: the numbers in benchmarks/results/NOTES.md and commit messages come from it.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conftest  # noqa: E402,F401  (puts the repository root on sys.path for `kernels`)
import test_bias_gelu_compile as gelu_builds  # noqa: E402
import test_cuda_kernels_compile as cuda_builds  # noqa: E402
import test_triton_attention_compile as attention_builds  # noqa: E402
import test_triton_ffn_compile as ffn_builds  # noqa: E402
import test_triton_kernels_compile as row_builds  # noqa: E402
import triton  # noqa: E402
from triton_aot import compile_kernel, cubin_sass, resource_usage, sass_counts  # noqa: E402

from kernels.row_settings import backward_row_block_settings  # noqa: E402

ATTENTION_HEAD_DIMS = (64, 128)


def _triton_row(label, kernel):
    (counts,) = sass_counts(cubin_sass(kernel.asm["cubin"])).values()
    usage = resource_usage(kernel)
    return label, usage["REG"], usage["STACK"], counts


def attention_rows(arch):
    for label, b in attention_builds.BUILDS.items():
        if (b.arch == arch and b.dtype == "bf16" and not b.dropout
                and b.head_dim in ATTENTION_HEAD_DIMS):
            yield label, lambda label=label: _triton_row(
                f"attention {label}", attention_builds.compile_build(label))


# (splits, head dim) of the split combine's rows: the decode case (B=1, 32 heads x 128, 9
# splits on an H100) and the widest tiles.
COMBINE_CASES = ((9, 128), (64, 128), (64, 256))
# Hidden sizes of the LayerNorm backward rows (BERT-base/GPT2 768 runs in the 1024 tile).
LAYER_NORM_BACKWARD_WIDTHS = (1024, 4096)


def combine_rows(arch):
    for splits, head_dim in COMBINE_CASES:
        label = f"attention split combine {splits} splits d{head_dim}"
        yield label, lambda label=label, s=splits, d=head_dim: _triton_row(
            label, attention_builds.compile_combine(s, d, arch))


def _compile_row_kernel(fn, types, constexprs, num_warps, arch):
    """A row kernel as a launch on BERT/GPT2 widths builds it: row strides and n_cols multiples
    of 16."""
    divisible = [name for name in fn.arg_names if name.startswith("stride_") or name == "n_cols"]
    return compile_kernel(fn, types, constexprs, arch, num_warps, divisible=divisible)


def layer_norm_backward_rows(arch):
    """The single-pass backward with a residual gradient (pre-LN blocks), no dropout."""
    for width in LAYER_NORM_BACKWARD_WIDTHS:
        block, _ = backward_row_block_settings(width)
        fn, constexprs, warps = row_builds.LNR_VARIANTS[f"bwd-block{block}-has_dh_out"]
        label = f"layer_norm_residual bwd-block{block} bf16"
        yield label, lambda label=label, fn=fn, c=constexprs, w=warps: _triton_row(
            label, _compile_row_kernel(fn, row_builds.lnr_types("bf16"), c, w, arch))


def _compile_bias_gelu(fn, constexprs, num_warps, arch):
    return _compile_row_kernel(fn, gelu_builds.gelu_types("bf16"), constexprs, num_warps, arch)


def bias_gelu_rows(arch):
    for label, (fn, constexprs, num_warps) in gelu_builds.VARIANTS.items():
        if label.endswith("4x1024"):
            yield f"bias_gelu {label}", lambda label=label, fn=fn, c=constexprs, w=num_warps: (
                _triton_row(f"bias_gelu {label} bf16", _compile_bias_gelu(fn, c, w, arch)))


def ffn_rows(arch):
    """The 16-bit GEMMs of shapes that fill their blocks (EVEN_M, EVEN_N, EVEN_K: the hot path)."""
    for label, (variant_arch, elem, *_, even) in ffn_builds.VARIANTS.items():
        if variant_arch == arch and elem == "bf16" and all(even.values()):
            yield f"ffn {label}", lambda label=label: _triton_row(
                f"ffn {label}", ffn_builds.compile_variant(label))
    if arch >= 90:
        for label, (epilogue, tiles) in ffn_builds.TMA_VARIANTS.items():
            yield f"ffn-tma {label}", lambda label=label, e=epilogue, t=tiles: _triton_row(
                f"ffn-tma {label}", ffn_builds.compile_tma_gemm(e, t))


CU_FILES = ("bias_gelu.cu", "masked_softmax.cu", "layer_norm_residual.cu", "decode_attention.cu")


def cuda_rows(arch, cu_files=CU_FILES):
    for cu_file in cu_files:
        yield from _cuda_file_rows(arch, cu_file)


def _cuda_file_rows(arch, cu_file):
    """One row per kernel of a csrc/*.cu file, built with the extension's nvcc flags."""
    if cuda_builds.NVCC is None:
        return
    cuda_arch = f"sm_{arch}a" if arch >= 90 else f"sm_{arch}"

    def build():
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "out.cubin")
            result = subprocess.run(
                [cuda_builds.NVCC, "-cubin", f"-arch={cuda_arch}", *cuda_builds.NVCC_FLAGS, "-I",
                 cuda_builds.CSRC, "-Xptxas", "-v", "-o", out,
                 os.path.join(cuda_builds.CSRC, cu_file)],
                check=True, capture_output=True, text=True)
            with open(out, "rb") as f:
                functions = sass_counts(cubin_sass(f.read()))
        usage = cuda_builds.parse_ptxas_report(result.stdout + result.stderr)
        names = cuda_builds.demangle(sorted(functions))
        return [(f"cuda {cu_file} {_short(names[name])}", usage.get(name, {}).get("registers", -1),
                 usage.get(name, {}).get("stack", -1), counts)
                for name, counts in sorted(functions.items())]

    yield f"cuda {cu_file}", build


def _short(name):
    """fastattn::(anonymous namespace)::bias_gelu_bwd_kernel<__nv_bfloat16, 8, false>(...) ->
    bias_gelu_bwd_kernel<__nv_bfloat16, 8, false>."""
    return re.sub(r"\([^()]*\)$", "", name).split("::")[-1]


def rows(arch, pattern="", cu_files=CU_FILES):
    """(label, registers, stack bytes, counts) of every row whose label matches pattern; the CUDA
    rows come from the files in cu_files (each built whole, then filtered)."""
    keep = re.compile(pattern)
    for generator in (attention_rows, combine_rows, layer_norm_backward_rows, bias_gelu_rows,
                      ffn_rows, lambda arch: cuda_rows(arch, cu_files)):
        for label, build in generator(arch):
            if label.startswith("cuda "):
                yield from (row for row in build() if keep.search(row[0]))
            elif keep.search(label):
                yield build()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", type=int, default=90, choices=(80, 90))
    parser.add_argument("pattern", nargs="?", default="")
    args = parser.parse_args(argv)
    print(f"sm_{args.arch}, triton {triton.__version__}: registers, stack bytes, static "
          "instructions, MUFU, loop bodies")
    for label, registers, stack, counts in rows(args.arch, args.pattern):
        print(f"{label:72s} {registers:4d} {stack:4d} {counts['instructions']:6d} "
              f"{counts['mufu']:4d}  {counts['loops']}", flush=True)


if __name__ == "__main__":
    main()
