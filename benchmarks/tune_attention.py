"""Time candidate tiles of the Triton attention kernels on this GPU: the sweep a tuning session runs.

    python -m benchmarks.tune_attention [--role forward|backward_dkdv|backward_dq|decode
                                                |backward_atomic_dq ...]
                                        [--head-dim 64|128 ...] [--seqlen 2048] [--dropout P]
                                        [--json PATH]
    make gpu-tune        (after make gpu, on the same machine: every role within a time budget)

For each role (forward, backward dK/dV, backward dQ, the backward with dQ added atomically by the
dK/dV kernel, whose candidate "two kernels" is the backward without it) and head dim, every
candidate in CANDIDATES
replaces the tiles kernels.attention_settings would choose, for that role only, and is
1. checked for numerics on a small awkward case (odd lengths, causal and not, a key padding mask
   with a hole) against fastattn.reference under DESIGN §5's rule: a tile that computes wrongly is
   reported, never timed;
2. timed on the issue's case: bfloat16, S = --seqlen, hidden 2048 (16 heads x 128 or 32 x 64),
   16k tokens a batch, causal and not; forward alone, or the backward alone (the forward in the
   untimed setup; the untouched kernel of the other backward role keeps its tiles).
The decode role (one query against a KV cache: the split-key forward's 16-row tiles) is checked on
a few queries against long keys and timed on the issue's decode cases, B=1 and B=16 with 4096 keys
(32 heads x 128, or 64 x 64), in GB/s of K and V read against the measured copy bandwidth.
With --dropout P every call drops attention probabilities with p = P (as GPT2 trains, 0.1): the
dropout tiles' own candidates (DROPOUT_CANDIDATES), checked against the reference under the same
Philox keep mask.
The table gives TFLOP/s (FLOPs as DESIGN §6 counts them) per candidate against the current tiles.
The candidates are sm_90 16-bit tiles that compiled ahead of time without spills and, but for
decode's, with every tl.dot on wgmma (screened with tests/compile's helpers under triton 3.6, 2026-11-26; see
CANDIDATES); on another architecture the sweep still runs, but the numbers answer a different
question. About 30 candidates, each compiled in a few variants and timed twice: run one role per
call on a lent GPU (a few minutes each).

Nothing here changes the package: a winner goes into kernels/attention_settings.py by hand, where
the compile tier then checks it in every flag variant.
"""

import argparse
import contextlib
import os
import sys

if __name__ == "__main__":  # before fastattn (and Triton's kernels) are imported
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")

import torch  # noqa: E402

import fastattn  # noqa: E402
from benchmarks import tuning  # noqa: E402
from benchmarks.timing import time_fn  # noqa: E402
from fastattn._rng import draw_dropout_seed  # noqa: E402
from fastattn.kernels import attention_settings as settings  # noqa: E402

Tiles = settings.Tiles
ROLES = ("forward", "backward_dkdv", "backward_dq", "backward_atomic_dq", "decode")
# The function of kernels.attention_settings each role's tiles come from.
SETTING = {"forward": "forward_tiles", "backward_dkdv": "backward_dkdv_tiles",
           "backward_dq": "backward_dq_tiles", "backward_atomic_dq": "backward_atomic_dq_tiles",
           "decode": "decode_tiles"}
# backward_atomic_dq: the dK/dV kernel's tiles when it also adds dQ atomically
# (kernels.attention_bwd, ATOMIC_DQ); its candidate None is the two-kernel backward (the dK/dV and
# dQ kernels, with their own tiles).
TWO_KERNELS = None
DECODE_KEYS, DECODE_BATCHES = 4096, (1, 16)  # the decode cases
HIDDEN, TOKENS = 2048, 16384  # the flash-attention grid of the issue

# (role, head dim) -> candidate tiles (block_m, block_n, num_warps, num_stages), sm_90 16-bit, the
# tiles chosen before the first H100 sweep (2026-11-26) first. Screened ahead of time (triton 3.6,
# sm_90, bf16, the six causal x dense / key mask / varlen variants, head dims 80 and 96 too for
# BLOCK_D 128; 2026-11-26): all lower every tl.dot to wgmma and none spills; the comment is the
# most registers a thread took. Rejected for spilling: forward D=128 128x128 (8 warps, 2-3 stages:
# 96 B), 64x128/4, 128x128/4; forward D=64 128x128/4, 64x128/4; dK/dV D=128 32x64, 32x128, 64x64,
# 16x128/3 stages; dK/dV D=64 64x64, 64x128, 32x128/3 stages.
CANDIDATES = {
    ("forward", 128): [Tiles(128, 64, 8, 3),   # 248
                       Tiles(128, 64, 8, 4),   # 255
                       Tiles(64, 64, 4, 3)],   # 255
    ("forward", 64): [Tiles(128, 64, 4, 3),    # 255
                      Tiles(128, 128, 8, 3),   # 253
                      Tiles(128, 64, 8, 3),    # 166
                      Tiles(128, 64, 4, 4),    # 255
                      Tiles(128, 32, 4, 3)],   # 213
    ("backward_dkdv", 128): [Tiles(16, 64, 8, 2),    # 244
                             Tiles(16, 128, 8, 2),   # 255
                             Tiles(16, 64, 8, 3)],   # 255
    ("backward_dkdv", 64): [Tiles(16, 64, 8, 2),     # 198
                            Tiles(32, 64, 8, 2),     # 252
                            Tiles(16, 128, 8, 2),    # 234
                            Tiles(32, 128, 8, 2),    # 255
                            Tiles(16, 64, 8, 3)],    # 242
    ("backward_dq", 128): [Tiles(64, 32, 8, 3),      # 122
                           Tiles(64, 64, 8, 3),      # 184
                           Tiles(128, 32, 8, 3),     # 165
                           Tiles(64, 32, 8, 4),      # 122
                           Tiles(128, 64, 8, 2),     # 230
                           Tiles(64, 64, 8, 2),      # 184
                           Tiles(128, 32, 8, 2)],    # 165
    ("backward_dq", 64): [Tiles(64, 32, 4, 3),       # 117
                          Tiles(64, 64, 4, 3),       # 168
                          Tiles(128, 32, 8, 3),      # 116
                          Tiles(64, 64, 8, 3),       # 153
                          Tiles(128, 64, 8, 3),      # 166
                          Tiles(64, 32, 4, 4),       # 117
                          Tiles(128, 32, 4, 3)],     # 201
    # Atomic dQ (screened 2026-12-06, triton 3.6, the six flag variants; registers as above): D=128
    # 16x128 spills 40-88 B in the causal variants (causal calls run two kernels), 16x128 with one
    # stage fits them all (no prefetch of the query tiles), 16x64 fits non-causal (210-216) and
    # spills 16-32 B causal.
    ("backward_atomic_dq", 128): [TWO_KERNELS,
                                  Tiles(16, 128, 8, 2),   # 254-255 non-causal
                                  Tiles(16, 128, 8, 1),   # 247-252 non-causal
                                  Tiles(16, 64, 8, 2)],   # 210-216 non-causal
    ("backward_atomic_dq", 64): [TWO_KERNELS,
                                 Tiles(16, 128, 8, 2),    # 203-255
                                 Tiles(16, 64, 8, 2)],
    # Decode (16-row query tiles streaming the KV cache; memory-bound, mma.sync is fine): the
    # screening's registers and shared memory (D=128 16x128/4 warps spilled, 2-3 stages).
    ("decode", 128): [Tiles(16, 32, 4, 3),     # 151, 37 KB
                      Tiles(16, 64, 4, 3),     # 198, 70 KB
                      Tiles(16, 64, 4, 2),     # 198, 38 KB
                      Tiles(16, 128, 8, 2),    # 198, 72 KB
                      Tiles(16, 32, 4, 4),     # 152, 53 KB
                      Tiles(16, 64, 8, 3),     # 146, 70 KB
                      Tiles(16, 64, 4, 4),     # 220, 102 KB
                      Tiles(16, 32, 2, 3)],    # 220, 37 KB
    ("decode", 64): [Tiles(16, 64, 4, 3),      # 145, 36 KB
                     Tiles(16, 32, 4, 3),      # 124, 19 KB
                     Tiles(16, 64, 4, 2),      # 143, 20 KB
                     Tiles(16, 128, 8, 2),     # 162, 38 KB
                     Tiles(16, 128, 4, 3),     # 255, 74 KB
                     Tiles(16, 64, 8, 3),      # 118, 36 KB
                     Tiles(16, 64, 4, 4),      # 148, 52 KB
                     Tiles(16, 32, 2, 3)],     # 156, 19 KB
}


@contextlib.contextmanager
def tiles_for(role, tiles):
    """Inside the block, `role`'s kernels launch with `tiles` whatever the call: the sweep's calls
    are all 16-bit and all with or all without dropout (--dropout), as its candidate table is.
    The dK/dV and dQ roles run the two-kernel backward (the dQ kernel is not launched when the
    dK/dV kernel adds dQ atomically)."""
    with tuning.replaced(settings, SETTING[role], lambda *args, **kwargs: tiles):
        if role in ("backward_dkdv", "backward_dq"):
            with tuning.replaced(settings, SETTING["backward_atomic_dq"],
                                 lambda *args, **kwargs: TWO_KERNELS):
                yield
        else:
            yield


# The same with attention dropout (`--dropout P`: GPT2 trains with p = 0.1 at D=64), whose tiles
# are their own (kernels.attention_settings, HAS_DROPOUT draws a Philox keep mask per score tile,
# one evaluation per eight keys). Screened likewise (triton 3.6, sm_90, bf16, HAS_DROPOUT, six flag
# variants; 2026-11-26, after the keep mask took four keys an evaluation); rejected for spilling:
# forward 128x64/4 warps (272-280 B), 64x128/4, 128x128/8; dK/dV 32x64, 32x128 and 16x64 with 3
# stages (16-272 B). dK/dV 16x32/4 warps fits but stays on mma.sync. Re-screened after the change
# to eight keys an evaluation: every candidate below fits (registers in the comments are from
# before; triton 3.8 now needs 128-241), forward 128x64/4 and dK/dV 32x64/8, 32x128/8 still spill
# under triton 3.6 (40-240 B).
DROPOUT_CANDIDATES = {
    ("forward", 64): [Tiles(64, 64, 4, 3),    # 240
                      Tiles(128, 64, 8, 3),   # 233
                      Tiles(64, 64, 4, 4),    # 243
                      Tiles(128, 32, 4, 3)],  # 249
    ("backward_dkdv", 64): [Tiles(16, 64, 8, 2),     # 241
                            Tiles(16, 128, 8, 2)],   # 254
    ("backward_dq", 64): [Tiles(64, 32, 4, 3),       # 175
                          Tiles(64, 64, 4, 3),       # 248
                          Tiles(128, 32, 8, 3),      # 177
                          Tiles(64, 32, 8, 3),       # 134
                          Tiles(128, 64, 8, 3),      # 239
                          Tiles(64, 64, 8, 3),       # 208
                          Tiles(64, 32, 4, 4)],      # 175
    # Atomic dQ with dropout: 16x64 fits (208-242), 16x128 spills 32-64 B causal (triton 3.6).
    ("backward_atomic_dq", 64): [TWO_KERNELS, Tiles(16, 64, 8, 2), Tiles(16, 128, 8, 2)],
}


def _inputs(batch, heads, seqlen, head_dim, dtype, device, seed=0, queries=None):
    """q, k, v with gradients; q has `queries` rows if given (decode), else `seqlen`."""
    generator = torch.Generator(device=device).manual_seed(seed)
    return [torch.randn(batch, heads, rows, head_dim, generator=generator, device=device,
                        dtype=torch.float32).to(dtype).requires_grad_()
            for rows in (queries or seqlen, seqlen, seqlen)]


def _seeded(seed, fn):
    torch.manual_seed(seed)
    return fn()


def numerics_failures(head_dim, dtype, device, dropout_p=0.0, queries=None):
    """What fails DESIGN §5's rule (outputs 2x, gradients 3x eager's error plus a floor) for the
    current tiles on a small awkward case; [] when all passes. With dropout the reference applies
    the keep mask of the Philox stream the call draws (seeded alike). `queries`: that many query
    rows against the keys (the decode tiles' case), else as many as keys."""
    failures = []
    seqlen = 113 if device.type == "cpu" else 257  # odd, more than one tile of any candidate
    if queries:  # keys enough to split (key_splits) under any candidate's BLOCK_N
        seqlen = 1031 if device.type == "cpu" else 4099
    mask = torch.ones(2, seqlen, dtype=torch.bool, device=device)
    mask[0, :5] = False  # left padding
    mask[1, seqlen // 3: seqlen // 2] = False  # a hole
    keep, call_seed = None, 11
    if dropout_p:
        keep = _seeded(call_seed, lambda: fastattn.reference.attention_dropout_keep_mask(
            int(draw_dropout_seed(dropout_p)), 2, 2, queries or seqlen, seqlen, dropout_p, device))
    for causal in (False, True):
        q, k, v = _inputs(2, 2, seqlen, head_dim, dtype, device, seed=1, queries=queries)
        dout = torch.randn_like(q)
        runs = {"out": lambda *t: _seeded(call_seed, lambda: fastattn.attention(
                    *t, causal=causal, key_padding_mask=mask, dropout_p=dropout_p,
                    backend="triton")),
                "ref": lambda *t: fastattn.reference.attention(
                    *t, causal=causal, key_padding_mask=mask, keep_mask=keep,
                    dropout_p=dropout_p, upcast=True),
                "eager": lambda *t: fastattn.reference.attention(
                    *t, causal=causal, key_padding_mask=mask, keep_mask=keep,
                    dropout_p=dropout_p, upcast=False)}
        failures += tuning.check_with_gradients(runs, (q, k, v), dout, ("out", "dq", "dk", "dv"),
                                                "causal" if causal else "full", dtype)
    return failures


def time_case(role, head_dim, causal, seqlen, dtype, device, dropout_p=0.0):
    """(ms p50, TFLOP/s) of the role's direction on the flash-attention grid case."""
    heads = HIDDEN // head_dim
    batch = max(1, TOKENS // seqlen)
    if device.type == "cpu":  # the interpreter: a token run that only proves the path works
        batch, heads = 1, 1
    q, k, v = _inputs(batch, heads, seqlen, head_dim, dtype, device)
    flops = 4 * batch * heads * seqlen * seqlen * head_dim // (2 if causal else 1)
    if role == "forward":
        with torch.no_grad():
            timing = time_fn(lambda: fastattn.attention(q, k, v, causal=causal, dropout_p=dropout_p,
                                                        backend="triton"), device)
    else:
        flops = int(2.5 * flops)
        dout = torch.randn_like(q)
        timing = time_fn(lambda out: torch.autograd.grad(out, (q, k, v), dout), device,
                         setup=lambda: (fastattn.attention(q, k, v, causal=causal, dropout_p=dropout_p,
                                                           backend="triton"),))
    return timing.p50, flops / (timing.p50 * 1e-3) / 1e12


def time_decode(head_dim, batch, dtype, device, dropout_p=0.0):
    """(ms p50, GB/s) of one query a sequence against DECODE_KEYS keys: K and V read once."""
    heads, keys = 4096 // head_dim, DECODE_KEYS
    if device.type == "cpu":  # the interpreter: a token run that only proves the path works
        heads, keys = 1, 256
    q, k, v = (t.detach() for t in _inputs(batch, heads, keys, head_dim, dtype, device, queries=1))
    with torch.no_grad():
        timing = time_fn(lambda: fastattn.attention(q, k, v, causal=True, dropout_p=dropout_p,
                                                    backend="triton"), device)
    return timing.p50, 2 * k.numel() * k.element_size() / (timing.p50 * 1e-3) / 1e9


def _current_tiles(role, head_dim, device, dropout_p, causal=False):
    if role == "decode":
        return settings.decode_tiles(head_dim, False, dropout=bool(dropout_p))
    arch = tuning.candidates_arch(device)
    if role == "backward_atomic_dq":
        return settings.backward_atomic_dq_tiles(head_dim, arch, False, bool(dropout_p), causal)
    return getattr(settings, SETTING[role])(head_dim, arch, False, dropout=bool(dropout_p))


def sweep(roles, head_dims, seqlen, device, dtype, report=print, dropout_p=0.0):
    """Yields one result dict per (role, head dim, candidate, case): cases causal and not, or for
    decode the batch sizes of DECODE_BATCHES."""
    table = DROPOUT_CANDIDATES if dropout_p else CANDIDATES
    for role in roles:
        for head_dim in head_dims:
            if (role, head_dim) not in table:
                report(f"{role} d{head_dim}{' with dropout' if dropout_p else ''}: no candidates")
                continue
            decode = role == "decode"
            cases = DECODE_BATCHES if decode else (False, True)
            chosen = {case: _current_tiles(role, head_dim, device, dropout_p,
                                           causal=not decode and case) for case in cases}
            for tiles in table[(role, head_dim)]:
                with tiles_for(role, tiles):
                    failures = numerics_failures(head_dim, dtype, device, dropout_p,
                                                 queries=3 if decode else None)
                    for case in cases:
                        result = {"role": role, "head_dim": head_dim, "dropout_p": dropout_p,
                                  "tiles": None if tiles is None else list(tiles),
                                  "current": tiles == chosen[case],
                                  "numerics": failures or "ok", "ms": None}
                        if decode:
                            result.update(batch=case, keys=DECODE_KEYS, gb_s=None)
                        else:
                            result.update(causal=case, seqlen=seqlen, tflop_s=None)
                        if not failures and decode:
                            result["ms"], result["gb_s"] = time_decode(head_dim, case, dtype,
                                                                       device, dropout_p)
                        elif not failures:
                            result["ms"], result["tflop_s"] = time_case(
                                role, head_dim, case, seqlen, dtype, device, dropout_p)
                        report(_line(result))
                        yield result


def _line(result):
    tiles = "two kernels"
    if result["tiles"] is not None:
        block_m, block_n, warps, stages = result["tiles"]
        tiles = f"{block_m}x{block_n} w{warps} s{stages}"
    if result["ms"] is None:
        speed = f"  numerics FAILED: {'; '.join(result['numerics'])}"
    elif "gb_s" in result:
        speed = f"{result['gb_s']:8.1f} GB/s    {result['ms']:8.3f} ms"
    else:
        speed = f"{result['tflop_s']:8.1f} TFLOP/s {result['ms']:8.3f} ms"
    case = (f"B={result['batch']}" if "batch" in result
            else "causal" if result["causal"] else "full")
    return (f"{result['role']:14s} d{result['head_dim']:<4d} {case:6s} "
            f"{tiles:16s}{' (current)' if result['current'] else '          '} {speed}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", action="append", choices=ROLES)
    parser.add_argument("--head-dim", action="append", type=int, choices=(64, 128))
    parser.add_argument("--seqlen", type=int, default=2048)
    parser.add_argument("--dropout", type=float, default=0.0, metavar="P",
                        help="attention dropout of every call (its own tiles and candidates)")
    parser.add_argument("--programs-per-sm", type=int, metavar="N",
                        help="decode: programs an SM is assumed to run at once, which sets how "
                             "many ways the keys are split (fastattn.backends.triton_attention)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    device, dtype, name = tuning.device_and_dtype()
    print(f"device: {name}, {dtype}, torch {torch.__version__}", flush=True)
    report = lambda line: print(line, flush=True)  # noqa: E731  (a run cut short keeps its lines)
    from fastattn.backends import triton_attention
    programs_per_sm = args.programs_per_sm or triton_attention.PROGRAMS_PER_SM
    with tuning.replaced(triton_attention, "PROGRAMS_PER_SM", programs_per_sm):
        results = sweep(args.role or ROLES, args.head_dim or (64, 128), args.seqlen, device,
                        dtype, report, args.dropout)
        return tuning.run_sweep(results, args.json, {"device": name, "dtype": str(dtype),
                                                     "dropout_p": args.dropout,
                                                     "programs_per_sm": programs_per_sm})


if __name__ == "__main__":
    sys.exit(main())
