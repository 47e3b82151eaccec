"""Time candidate tiles of the Triton FFN GEMM on this GPU: the sweep a tuning session runs.

    python -m benchmarks.tune_ffn [--kind plain|gelu_grad|dropout ...] [--shape T W H] [--json PATH]
    make gpu-tune TUNE=ffn      (after make gpu, on the same machine)

The FFN's GEMMs (kernels/ffn_matmul.py) take their tiles by epilogue kind
(kernels/ffn_settings.py): "plain" (the up projection's bias + GELU, the down projection's bias,
and the weight and input gradients), "gelu_grad" (dA, the GELU derivative and bias-gradient sums)
and "dropout" (the down projection with dropout, in training). For each kind every candidate in
CANDIDATES replaces that kind's tiles and is
1. checked for numerics on two small cases (one whose sizes fill no tile, one aligned like the
   timed case: each compiles its own variant) against fastattn.reference.ffn under DESIGN §5's
   rule, outputs and the five gradients: a tile that computes wrongly is reported, never timed;
2. timed on the issue's BERT-base case (bfloat16, 8192 tokens x 768 -> 3072 -> 768, erf GELU):
   "plain" the up projection alone (the issue's target: >= 80% of cuBLAS's TFLOP/s for the GEMM,
   >= 1.15x eager) and the whole forward + backward; the other kinds forward + backward (with
   dropout 0.1 for "dropout").
The first lines give eager PyTorch and the plain cuBLAS GEMM on the same case, for reference.
Candidates are sm_90 16-bit tiles screened ahead of time (see CANDIDATES); a winner goes into
kernels/ffn_settings.py by hand, where the compile tier then checks it under both triton versions.
"""

import argparse
import os
import sys

if __name__ == "__main__":  # before fastattn (and Triton's kernels) are imported
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import fastattn  # noqa: E402
from benchmarks import tuning  # noqa: E402
from benchmarks.timing import time_fn  # noqa: E402
from fastattn.backends import triton_ffn  # noqa: E402
from fastattn.kernels import ffn_settings as settings  # noqa: E402

Tiles = settings.Tiles
KINDS = settings.KINDS
APPROXIMATE = "none"  # BERT-base's erf GELU
SHAPE = {"cuda": (8192, 768, 3072), "cpu": (64, 64, 256)}  # tokens, width, hidden (BERT-base on GPU)
DROPOUT_P = 0.1

# kind -> candidate tiles (block_m, block_n, block_k, group_m, num_warps, num_stages), sm_90
# 16-bit, the tiles chosen before the first sweep first. Screened ahead of time (triton 3.6, sm_90,
# bf16, every epilogue of the kind, 16-aligned strides as BERT/GPT2 widths give; 2026-11-26): none
# spills, every dot on wgmma; the comment is the most registers a thread took. Rejected for
# spilling: plain 128x256x64/8 warps (the GELU epilogue, 208-264 B), 128x128x64 and 64x128x64 and
# 128x64x64 with 4 warps; dropout 128x128x64/8 warps (480 B; gelu_grad's 16 B went with tl.erf,
# see below), 64x256x64, 128x128x32, and 4-warp tiles but 64x64x64.
CANDIDATES = {
    settings.PLAIN: [Tiles(128, 64, 64, 8, 8, 4),    # 138
                     Tiles(128, 128, 64, 8, 8, 3),   # 246
                     Tiles(128, 128, 64, 8, 8, 4),   # 246
                     Tiles(128, 128, 64, 8, 8, 5),   # 246
                     Tiles(128, 128, 32, 8, 8, 4),   # 246
                     Tiles(64, 256, 64, 8, 8, 3),    # 236
                     Tiles(64, 128, 64, 8, 8, 4),    # 128
                     Tiles(64, 128, 64, 8, 4, 4),    # 236
                     Tiles(128, 64, 64, 8, 4, 4)],   # 239
    settings.GELU_GRAD: [Tiles(128, 64, 64, 8, 8, 4),   # 164
                         Tiles(128, 64, 64, 8, 8, 3),   # 164
                         Tiles(64, 128, 64, 8, 8, 4),   # 170
                         Tiles(64, 128, 64, 8, 8, 3),   # 170
                         Tiles(128, 64, 32, 8, 8, 4),   # 164
                         Tiles(64, 64, 64, 8, 4, 4),    # 168
                         Tiles(64, 64, 64, 8, 4, 3),    # 168
                         # Spill-free since the 16-bit erfc form (2026-11-27): 155 registers
                         # under triton 3.8, 211 under 3.6 (16 B spilled with tl.erf).
                         Tiles(128, 128, 64, 8, 8, 4),
                         Tiles(128, 128, 64, 8, 8, 3)],
    settings.DROPOUT: [Tiles(128, 64, 64, 8, 8, 4),   # 174
                       Tiles(128, 64, 64, 8, 8, 3),   # 174
                       Tiles(64, 128, 64, 8, 8, 4),   # 173
                       Tiles(64, 128, 64, 8, 8, 3),   # 173
                       Tiles(128, 64, 32, 8, 8, 4),   # 177
                       Tiles(64, 64, 64, 8, 4, 4)],   # 168
}
# The persistent TMA kernel's candidates (screened in kernels/ffn_settings.py) after the pointer
# kernel's: on the H100 run of 2026-11-26 the pointer kernel's up projection reached 276 TFLOP/s
# against cuBLAS's ~620 (the target: 80% of it).
for _kind, _tma_tiles in settings.TMA_CANDIDATES.items():
    CANDIDATES[_kind] = CANDIDATES[_kind] + list(_tma_tiles)


def tiles_for(kind, tiles):
    """Inside the block, launches of epilogue `kind` take `tiles`; the other kinds keep theirs."""
    chosen = settings.matmul_tiles

    def matmul_tiles(arch, is_fp32, gelu_grad, dropout=False):
        if settings.epilogue_kind(gelu_grad, dropout) == kind:
            return tiles
        return chosen(arch, is_fp32, gelu_grad, dropout)

    return tuning.replaced(settings, "matmul_tiles", matmul_tiles)


def make_inputs(tokens, width, hidden, dtype, device, seed=0):
    """x, w1, b1, w2, b2 (nn.Linear layout) with gradients, at a scale that keeps GELU's input O(1)."""
    generator = torch.Generator(device=device).manual_seed(seed)

    def randn(*shape, scale=1.0):
        t = torch.randn(*shape, generator=generator, device=device, dtype=torch.float32) * scale
        return t.to(dtype).requires_grad_()

    return [randn(tokens, width), randn(hidden, width, scale=width ** -0.5), randn(hidden, scale=0.1),
            randn(width, hidden, scale=hidden ** -0.5), randn(width, scale=0.1)]


def numerics_failures(dtype, device):
    """What fails DESIGN §5's rule for the current tiles (no dropout: its mask is checked by the
    test tiers; the dropout kind's GEMM arithmetic is the plain one plus the mask), [] if none."""
    failures = []
    for tokens, width, hidden in ((131, 40, 72), (128, 64, 256)):  # fills no tile; aligned
        inputs = make_inputs(tokens, width, hidden, dtype, device, seed=1)
        dout = torch.randn(tokens, width, device=device, dtype=dtype)
        runs = {"out": lambda *t: fastattn.ffn(*t, approximate=APPROXIMATE, backend="triton"),
                "ref": lambda *t: fastattn.reference.ffn(*t, APPROXIMATE),
                "eager": lambda *t: fastattn.reference.ffn(*t, APPROXIMATE, upcast=False)}
        failures += tuning.check_with_gradients(runs, inputs, dout,
                                                ("out", "dx", "dw1", "db1", "dw2", "db2"),
                                                f"{tokens}x{width}x{hidden}", dtype)
    return failures


def _up_flops(shape):
    tokens, width, hidden = shape
    return 2 * tokens * width * hidden


def _tflop_s(flops, ms):
    return flops / (ms * 1e-3) / 1e12


def timed_cases(kind, shape, dtype, device):
    """name -> (step function, FLOPs) of the cases timed for `kind` (see the module docstring)."""
    inputs = make_inputs(*shape, dtype, device)
    dropout_p = DROPOUT_P if kind == settings.DROPOUT else 0.0

    def up():
        with torch.no_grad():
            return triton_ffn.ffn_up(*(t.detach() for t in inputs[:3]), APPROXIMATE, False)

    def train():
        out = fastattn.ffn(*inputs, approximate=APPROXIMATE, dropout_p=dropout_p, backend="triton")
        return torch.autograd.grad(out, inputs, torch.ones_like(out))

    cases = {"fwd+bwd": (train, 3 * 2 * _up_flops(shape))}
    if kind == settings.PLAIN:
        cases = {"up": (up, _up_flops(shape)), **cases}
    return cases


def baselines(shape, dtype, device, report):
    """Eager PyTorch and the plain cuBLAS GEMM on the timed case, for the table's context."""
    x, w1, b1, w2, b2 = make_inputs(*shape, dtype, device)

    def eager_up():
        with torch.no_grad():
            return F.gelu(F.linear(x, w1, b1), approximate=APPROXIMATE)

    def eager_train():
        out = F.linear(F.gelu(F.linear(x, w1, b1), approximate=APPROXIMATE), w2, b2)
        return torch.autograd.grad(out, (x, w1, b1, w2, b2), torch.ones_like(out))

    def cublas_mm():
        with torch.no_grad():
            return torch.mm(x, w1.t())

    rows = []
    for name, fn, flops in (("cuBLAS x @ W1^T", cublas_mm, _up_flops(shape)),
                            ("eager up", eager_up, _up_flops(shape)),
                            ("eager fwd+bwd", eager_train, 3 * 2 * _up_flops(shape))):
        ms = time_fn(fn, device).p50
        rows.append({"baseline": name, "ms": ms, "tflop_s": _tflop_s(flops, ms)})
        report(f"{'baseline':10s} {name:28s} {_tflop_s(flops, ms):8.1f} TFLOP/s {ms:8.3f} ms")
    return rows


def sweep(kinds, shape, device, dtype, report=print):
    """Yields one result dict per (kind, candidate, timed case)."""
    arch = tuning.candidates_arch(device)
    for kind in kinds:
        chosen = settings.tiles_for_kind(arch, False, kind)
        for tiles in CANDIDATES[kind]:
            with tiles_for(kind, tiles):
                failures = numerics_failures(dtype, device)
                for case, (fn, flops) in timed_cases(kind, shape, dtype, device).items():
                    result = {"kind": kind, "case": case, "shape": list(shape), "tiles": list(tiles),
                              "current": tiles == chosen, "numerics": failures or "ok",
                              "ms": None, "tflop_s": None}
                    if not failures:
                        result["ms"] = time_fn(fn, device).p50
                        result["tflop_s"] = _tflop_s(flops, result["ms"])
                    report(_line(result))
                    yield result


def _line(result):
    t = result["tiles"]
    tiles = f"{t[0]}x{t[1]}x{t[2]} w{t[4]} s{t[5]}{' tma' if t[6] else ''}"
    speed = (f"{result['tflop_s']:8.1f} TFLOP/s {result['ms']:8.3f} ms" if result["tflop_s"]
             else f"  numerics FAILED: {'; '.join(result['numerics'])}")
    return (f"{result['kind']:10s} {result['case']:8s} {tiles:19s}"
            f"{' (current)' if result['current'] else '          '} {speed}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", action="append", choices=KINDS)
    parser.add_argument("--shape", type=int, nargs=3, metavar=("TOKENS", "WIDTH", "HIDDEN"),
                        help=f"the timed case (default {SHAPE['cuda']} on a GPU, {SHAPE['cpu']} on CPU)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    device, dtype, name = tuning.device_and_dtype()
    shape = tuple(args.shape or SHAPE[device.type])
    print(f"device: {name}, {dtype}, torch {torch.__version__}; tokens x width x hidden "
          f"{'x'.join(map(str, shape))}", flush=True)
    report = lambda line: print(line, flush=True)  # noqa: E731  (a run cut short keeps its lines)
    header = {"device": name, "dtype": str(dtype), "shape": list(shape),
              "baselines": baselines(shape, dtype, device, report)}
    return tuning.run_sweep(sweep(args.kind or KINDS, shape, device, dtype, report), args.json,
                            header)


if __name__ == "__main__":
    sys.exit(main())
