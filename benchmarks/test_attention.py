"""Attention: every available fastattn backend against eager attention, SDPA and torch.compile.

Three families of cases (DESIGN §6; sizes from the issue):
- "grid": the flash-attention grid, hidden 2048 as 32 heads x 64 or 16 x 128, 16k tokens per batch
  (B = 16k / S), S from 512 to 16k, causal and not; forward and backward (backward timed alone,
  the forward in the untimed setup).
- "bert": BERT's padded batch, B=16, H=12, S=512, D=64, real lengths uniform in [0.2, 1] x 512
  (a fixed draw), key_padding_mask; forward. Reported with padded-shape FLOPs and, in `extra`,
  the real-token figures.
- "decode": one query against a KV cache, B in 1, 16, 64, Sk 1k..32k, H=32, D=128, judged by
  bandwidth (reading K and V once is the floor).
- "decode_padded": the B=16 decode case with the key padding mask of batched generation (prompts
  left-padded, real lengths uniform in [0.2, 1] x Sk, a fixed draw); bandwidth over the whole
  cache, as the kernels read it. No target of its own: how far a mask takes decode from "decode".
FLOPs: 4*B*H*Sq*Sk*D, halved for causal; backward 2.5x forward. On CPU: tiny sizes.
"""

import functools

import pytest
import torch
import torch.nn.functional as F

import fastattn
from benchmarks import device_info as devices
from benchmarks import harness
from benchmarks.records import dtype_name, make_record

OP = "attention"
SDPA = "sdpa"
IMPLS = harness.IMPLS[:2] + (SDPA,) + harness.IMPLS[2:]

GRID_TOKENS = {"cuda": 16384, "cpu": 512}
GRID_SEQLENS = {("cuda", "full"): (512, 1024, 2048, 4096, 8192, 16384),
                ("cuda", "quick"): (2048,), ("cpu", "full"): (128,), ("cpu", "quick"): (128,)}
GRID_HEADS = {"cuda": ((32, 64), (16, 128)), "cpu": ((4, 64),)}
BERT = {"cuda": (16, 12, 512, 64), "cpu": (2, 4, 128, 64)}
DECODE_BATCHES = {("cuda", "full"): (1, 16, 64), ("cuda", "quick"): (1, 16),
                  ("cpu", "full"): (1,), ("cpu", "quick"): (1,)}
DECODE_SEQLENS = {("cuda", "full"): (1024, 4096, 16384, 32768), ("cuda", "quick"): (4096,),
                  ("cpu", "full"): (1024,), ("cpu", "quick"): (1024,)}
DECODE_HEADS = {"cuda": (32, 128), "cpu": (4, 64)}
DECODE_PADDED_BATCH = {"cuda": 16, "cpu": 2}

# From the issue, for an H100 in bfloat16.
TARGET_NOTE = ("from the issue, for H100, bfloat16, fused backends: causal S=2048 forward >= 370 "
               "TFLOP/s at D=64 and >= 520 at D=128; non-causal S=2048 backward >= 400 at D=128; BERT "
               "padded >= 4x eager (and >= 1.5x SDPA, read off the table); decode >= 80% of copy bandwidth.")


def targets(info, impl, family, direction, causal, seqlen, head_dim):
    if info["type"] != "cuda" or impl not in ("triton", "cuda"):
        return None
    if family == "grid" and seqlen == 2048:
        if direction == "fwd" and causal:
            return {"min_tflop_s": 370 if head_dim == 64 else 520}
        if direction == "bwd" and not causal and head_dim == 128:
            return {"min_tflop_s": 400}
    if family == "bert":
        return {"min_speedup_vs_eager": 4.0}
    if family == "decode":
        return {"min_gb_s": 0.8 * info["copy_gb_s"]}
    return None


def eager_attention(q, k, v, causal=False, key_padding_mask=None):
    """The naive composition: matmul, masked_fill, softmax, matmul (no GQA in these cases)."""
    scores = torch.matmul(q, k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    if causal:
        seqlen_q, seqlen_k = q.shape[2], k.shape[2]
        future = torch.ones(seqlen_q, seqlen_k, dtype=torch.bool, device=q.device).triu(
            seqlen_k - seqlen_q + 1)
        scores = scores.masked_fill(future, float("-inf"))
    if key_padding_mask is not None:
        scores = scores.masked_fill(~key_padding_mask[:, None, None, :], float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1), v)


def sdpa_attention(q, k, v, causal=False, key_padding_mask=None):
    if key_padding_mask is not None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=key_padding_mask[:, None, None, :],
                                              is_causal=False)
    # is_causal is top-left aligned; the grid cases have Sq == Sk, where both agree.
    return F.scaled_dot_product_attention(q, k, v, is_causal=causal and q.shape[2] == k.shape[2])


def fastattn_attention(q, k, v, causal=False, key_padding_mask=None, *, backend):
    return fastattn.attention(q, k, v, causal=causal, key_padding_mask=key_padding_mask,
                              backend=backend)


def _cases(device_type, mode):
    for seqlen in GRID_SEQLENS[(device_type, mode)]:
        for heads, head_dim in GRID_HEADS[device_type]:
            batch = max(1, GRID_TOKENS[device_type] // seqlen)
            for causal in (False, True):
                for direction in ("fwd", "bwd"):
                    yield "grid", direction, (batch, heads, seqlen, seqlen, head_dim), causal
    batch, heads, seqlen, head_dim = BERT[device_type]
    yield "bert", "fwd", (batch, heads, seqlen, seqlen, head_dim), False
    heads, head_dim = DECODE_HEADS[device_type]
    for batch in DECODE_BATCHES[(device_type, mode)]:
        for seqlen_k in DECODE_SEQLENS[(device_type, mode)]:
            yield "decode", "fwd", (batch, heads, 1, seqlen_k, head_dim), False
    seqlen_k = DECODE_SEQLENS[(device_type, "quick")][0]
    yield ("decode_padded", "fwd", (DECODE_PADDED_BATCH[device_type], heads, 1, seqlen_k, head_dim),
           False)


def pytest_generate_tests(metafunc):
    if "impl" not in metafunc.fixturenames:
        return
    device_type = devices.bench_device().type
    mode = "quick" if metafunc.config.getoption("--quick") else "full"
    dtype = torch.bfloat16 if device_type == "cuda" else torch.float32
    cases, ids = [], []
    for family, direction, shape, causal in _cases(device_type, mode):
        for impl in IMPLS:
            cases.append((family, direction, shape, causal, dtype, impl))
            ids.append(f"{family}-{direction}-{'causal-' if causal else ''}"
                       f"{'x'.join(map(str, shape))}-{impl}")
    metafunc.parametrize("family,direction,shape,causal,dtype,impl", cases, ids=ids)


def bert_lengths(batch, seqlen, device):
    generator = torch.Generator().manual_seed(0)
    lengths = (torch.empty(batch).uniform_(0.2, 1.0, generator=generator) * seqlen).long().clamp(1, seqlen)
    return (torch.arange(seqlen)[None, :] < lengths[:, None]).to(device)


def left_padded_lengths(batch, seqlen, device):
    """Batched generation's key padding mask: each row's real tokens at its end."""
    return bert_lengths(batch, seqlen, device).flip(1)


def attention_flops(batch, heads, seqlen_q, seqlen_k, head_dim, causal, direction):
    flops = 4 * batch * heads * seqlen_q * seqlen_k * head_dim / (2 if causal else 1)
    return flops * (2.5 if direction == "bwd" else 1.0)


def test_attention(benchmark, bench_device, bench_device_info, bench_results,
                   family, direction, shape, causal, dtype, impl):
    device, info = bench_device, bench_device_info
    batch, heads, seqlen_q, seqlen_k, head_dim = shape
    if impl == SDPA:
        fn = sdpa_attention
    else:
        fn = harness.implementation(impl, eager_attention, fastattn_attention, device)
    generator = torch.Generator(device=device).manual_seed(0)

    def randn(*size):
        return torch.randn(*size, generator=generator, device=device, dtype=dtype).requires_grad_(
            direction == "bwd")

    q = randn(batch, heads, seqlen_q, head_dim)
    k, v = randn(batch, heads, seqlen_k, head_dim), randn(batch, heads, seqlen_k, head_dim)
    masks = {"bert": bert_lengths, "decode_padded": left_padded_lengths}
    mask = masks[family](batch, seqlen_k, device) if family in masks else None
    call = functools.partial(fn, causal=causal, key_padding_mask=mask)
    variant = family + (" causal" if causal else "")
    benchmark.group = f"{OP} {direction} {variant} {dtype_name(dtype)} {'x'.join(map(str, shape))}"
    if direction == "fwd":
        timing = harness.time_case(benchmark, impl, device, lambda: call(q, k, v))
    else:
        dout = torch.randn(batch, heads, seqlen_q, head_dim, device=device, dtype=dtype)
        timing = harness.time_case(benchmark, impl, device,
                                   lambda out: torch.autograd.grad(out, (q, k, v), dout),
                                   setup=lambda: (call(q, k, v),))
    element = torch.empty(0, dtype=dtype).element_size()
    extra = None
    if family == "bert":
        real = int(mask.sum())
        real_flops = 4 * heads * head_dim * int((mask.sum(1) ** 2).sum())
        extra = {"real_tokens": real, "real_tflop_s": real_flops / (timing.p50 * 1e-3) / 1e12}
    decode = family.startswith("decode")
    bytes_moved = element * (2 * q.numel() + k.numel() + v.numel()) if decode else None
    bench_results.add(benchmark, make_record(
        op=OP, direction=direction, impl=impl, shape=shape, dtype=dtype, timing=timing,
        device_info=info, variant=variant, baseline=impl in harness.IMPLS[:2] + (SDPA,),
        flops=attention_flops(batch, heads, seqlen_q, seqlen_k, head_dim, causal, direction),
        bytes_moved=bytes_moved, bound="memory" if decode else None,
        plot_x=seqlen_k, plot_x_name="key length",
        targets=targets(info, impl, family, direction, causal, seqlen_k, head_dim),
        target_note=TARGET_NOTE if info["type"] == "cuda" else None, extra=extra))
