"""Scaled masked softmax: every available fastattn backend against eager PyTorch and torch.compile.

BERT's attention probabilities: scores [B, H, Sq, Sk] scaled, right-padded keys hidden by a
key_padding_mask, softmax over the keys. Sk runs from 128 to 16k at B=16, H=12; Sq is 512, and
smaller for long rows so that a tensor stays at about 100M elements. The causal variant (GPT2) has
no padding mask. Forward and backward are separate cases; the backward case times only the
backward (the forward runs in the untimed setup before each run).
"""

import torch

import fastattn
from benchmarks import device_info as devices
from benchmarks import harness
from benchmarks.records import dtype_name, make_record

OP = "masked_softmax"
SCALE = 0.125

GPU_BATCH, GPU_HEADS, GPU_QUERIES = 16, 12, 512
GPU_MAX_ELEMENTS = GPU_BATCH * GPU_HEADS * GPU_QUERIES * 1024
CPU_BATCH, CPU_HEADS, CPU_QUERIES = 2, 4, 128
KEYS = {
    ("cuda", "full"): (128, 256, 512, 1024, 2048, 4096, 8192, 16384),
    ("cuda", "quick"): (512, 2048),
    ("cpu", "full"): (128, 512),
    ("cpu", "quick"): (128,),
}
DTYPES = {
    ("cuda", "full"): (torch.bfloat16, torch.float16, torch.float32),
    ("cuda", "quick"): (torch.bfloat16,),
    ("cpu", "full"): (torch.float32,),
    ("cpu", "quick"): (torch.float32,),
}
# The CPU suite stays short: one variant.
VARIANTS = {
    ("cuda", "full"): ("padding mask", "causal"),
    ("cuda", "quick"): ("padding mask",),
    ("cpu", "full"): ("padding mask",),
    ("cpu", "quick"): ("padding mask",),
}

# From the issue, set for an H100: fused backends in bfloat16 at BERT-base's B=16, H=12, S=512.
TARGET_SHAPE = (GPU_BATCH, GPU_HEADS, 512, 512)
TARGET_SPEEDUP, TARGET_COPY_FRACTION = 2.5, 0.85
TARGET_NOTE = ("from the issue, for H100, fused backends (triton, cuda), bfloat16, B=16, H=12, "
               "S=512 with a padding mask: >= 2.5x eager and >= 85% of the measured copy bandwidth.")


def queries_for(device_type, keys):
    if device_type != "cuda":
        return CPU_QUERIES
    return max(1, min(GPU_QUERIES, GPU_MAX_ELEMENTS // (GPU_BATCH * GPU_HEADS * keys)))


def pytest_generate_tests(metafunc):
    if "impl" not in metafunc.fixturenames:
        return
    device_type = devices.bench_device().type
    mode = "quick" if metafunc.config.getoption("--quick") else "full"
    batch, heads = (GPU_BATCH, GPU_HEADS) if device_type == "cuda" else (CPU_BATCH, CPU_HEADS)
    cases, ids = [], []
    for direction in ("fwd", "bwd"):
        for variant in VARIANTS[(device_type, mode)]:
            for dtype in DTYPES[(device_type, mode)]:
                for keys in KEYS[(device_type, mode)]:
                    shape = (batch, heads, queries_for(device_type, keys), keys)
                    for impl in harness.IMPLS:
                        cases.append((direction, variant, dtype, shape, impl))
                        ids.append(f"{direction}-{variant.replace(' ', '_')}-{dtype_name(dtype)}-"
                                   f"{'x'.join(map(str, shape))}-{impl}")
    metafunc.parametrize("direction,variant,dtype,shape,impl", cases, ids=ids)


def eager_masked_softmax(scores, key_padding_mask, causal):
    """What an eager attention does: scale, fill hidden keys with -inf, softmax."""
    logits = scores * SCALE
    if key_padding_mask is not None:
        logits = logits.masked_fill(~key_padding_mask[:, None, None, :], float("-inf"))
    if causal:
        queries, keys = scores.shape[-2:]
        hidden = torch.ones(queries, keys, dtype=torch.bool, device=scores.device).triu(keys - queries + 1)
        logits = logits.masked_fill(hidden, float("-inf"))
    return torch.softmax(logits, dim=-1)


def fastattn_masked_softmax(scores, key_padding_mask, causal, *, backend):
    return fastattn.masked_softmax(scores, key_padding_mask=key_padding_mask, causal=causal,
                                   scale=SCALE, backend=backend)


def make_inputs(shape, dtype, device, variant, requires_grad):
    """Scores, and for the padding variant a right-padded mask keeping 50-100% of the keys."""
    generator = torch.Generator(device=device).manual_seed(0)
    batch, _, _, keys = shape
    scores = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
    scores = (3 * scores).to(dtype).requires_grad_(requires_grad)
    if variant == "causal":
        return scores, None, True
    lengths = torch.randint(keys // 2, keys + 1, (batch,), generator=generator, device=device)
    mask = torch.arange(keys, device=device)[None, :] < lengths[:, None]
    return scores, mask, False


def minimal_bytes(direction, shape, dtype, has_mask):
    """Forward: read scores (and the [B, Sk] mask), write the probabilities. Backward: read the
    probabilities and their gradient, write the scores' gradient."""
    element = torch.empty(0, dtype=dtype).element_size()
    batch, heads, queries, keys = shape
    elements = batch * heads * queries * keys
    if direction == "fwd":
        return 2 * elements * element + (batch * keys if has_mask else 0)
    return 3 * elements * element


def targets(device_info, impl, direction, variant, dtype, shape):
    if (device_info["type"] != "cuda" or impl not in ("triton", "cuda") or dtype != torch.bfloat16
            or direction != "fwd" or variant != "padding mask" or tuple(shape) != TARGET_SHAPE):
        return None
    return {"min_speedup_vs_eager": TARGET_SPEEDUP,
            "min_gb_s": TARGET_COPY_FRACTION * device_info["copy_gb_s"]}


def test_masked_softmax(benchmark, bench_device, bench_device_info, bench_results,
                        direction, variant, dtype, shape, impl):
    device, info = bench_device, bench_device_info
    fn = harness.implementation(impl, eager_masked_softmax, fastattn_masked_softmax, device)
    scores, mask, causal = make_inputs(shape, dtype, device, variant, requires_grad=direction == "bwd")
    benchmark.group = f"{OP} {direction} {variant} {dtype_name(dtype)} {'x'.join(map(str, shape))}"
    if direction == "fwd":
        timing = harness.time_case(benchmark, impl, device, lambda: fn(scores, mask, causal))
    else:
        dy = torch.randn(shape, device=device, dtype=dtype)
        timing = harness.time_case(benchmark, impl, device,
                                   lambda y: torch.autograd.grad(y, scores, dy),
                                   setup=lambda: (fn(scores, mask, causal),))
    bench_results.add(benchmark, make_record(
        op=OP, direction=direction, impl=impl, shape=shape, dtype=dtype, variant=variant,
        bytes_moved=minimal_bytes(direction, shape, dtype, mask is not None), timing=timing,
        device_info=info, plot_x=shape[-1], plot_x_name="keys (Sk)",
        targets=targets(info, impl, direction, variant, dtype, shape),
        target_note=harness.h100_target_note(info, TARGET_NOTE)))
