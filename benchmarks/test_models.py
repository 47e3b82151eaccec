"""Whole Hugging Face models, patched with fastattn.patch, against the same models unpatched.

Cases (GPU sizes; the CPU runs tiny configs so the suite stays about a minute):
  bert fwd "padded"   BERT-base (random weights from its config), B=16, S=512, real lengths
                      uniform in [0.2, 1] x 512 (right padding): unpad once, varlen attention
  bert fwd "latency"  BERT-base, B=1, S=128, no padding
  bert fwd "latency compiled"  the same under torch.compile(mode="reduce-overhead") (CUDA graphs;
                      GPU only; compiling takes tens of seconds, in the untimed first run)
  bert fwd "padded compiled"  the padded case under the same compile: its 8192 positions are more
                      than fastattn keeps padded under compile (packing.STATIC_TOKENS_UNDER_COMPILE),
                      so the patched encoder unpads (a data-dependent size: no CUDA graph for
                      that part); whether compiling buys the host time back there
  gpt2 train          GPT2-small forward + backward, B=8, S=1024
  gpt2 generate       greedy generation with the KV cache, B=1 and B=16, tokens/s
  gpt2 generate static  the same with a static cache (cache_implementation="static"): on a GPU
                      transformers compiles the decoding step (inductor, CUDA graphs) for every
                      implementation, so each step replays without Python; compiling takes tens
                      of seconds (the first, untimed run). Quick GPU pass: B=1, sdpa and auto.
  gpt_bigcode generate "B=16 padded"  GPTBigCode of GPT2-small's size with multi-query attention
                      (one key/value head), B=16 left-padded prompts (lengths uniform in
                      [0.2, 1] x prompt): with a padding mask transformers' sdpa path copies the
                      KV cache for every head (repeat_kv) each layer and step; fastattn reads it
                      once.
Implementations: each fastattn backend forced for every op (torch, triton, cuda), and "auto", the
model patched with no backend named (what `fastattn.patch(model)` gives a user: each op on the
backend dispatch's AUTO_ORDER picks for it; on CPU that is the torch backend, so it is skipped
there). Baselines: transformers with attn_implementation "eager" and "sdpa", in the same run. FLOPs count
the useful work on real tokens (GEMMs 2*T*in*out, attention 4*sum(L^2)*hidden, halved when causal,
backward 2x the forward).
"""

import pytest
import torch
from transformers import (BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, GPTBigCodeConfig,
                          GPTBigCodeForCausalLM)

import fastattn
from benchmarks import device_info as devices
from benchmarks import harness
from benchmarks.records import EAGER, SDPA, make_record
from benchmarks.timing import time_fn

OP = "model"
BACKENDS = ("torch", "triton", "cuda")
AUTO = "auto"  # fastattn.patch(model) with no backend named

MODEL_CLASSES = {"bert": BertModel, "gpt2": GPT2LMHeadModel, "gpt_bigcode": GPTBigCodeForCausalLM}
GPU_SIZES = dict(bert=BertConfig(), gpt2=GPT2Config(), gpt_bigcode=GPTBigCodeConfig(),
                 padded=(16, 512), latency=(1, 128),
                 train=(8, 1024), generate_batches=(1, 16), prompt=32,
                 new_tokens={"full": 256, "quick": 64})
# Small vocabularies on CPU: GPT2's 50k-wide LM head would otherwise be most of the time.
CPU_SIZES = dict(bert=BertConfig(vocab_size=1000, hidden_size=128, num_hidden_layers=2,
                                 num_attention_heads=4, intermediate_size=512),
                 gpt2=GPT2Config(vocab_size=1000, n_embd=128, n_layer=2, n_head=4),
                 gpt_bigcode=GPTBigCodeConfig(vocab_size=1000, n_embd=128, n_layer=2, n_head=4),
                 padded=(4, 128), latency=(1, 32), train=(2, 128), generate_batches=(1, 4),
                 prompt=8, new_tokens={"full": 8, "quick": 8})

# From the issue, for an H100 in bfloat16.
TARGETS = {("bert", "padded"): 2.5, ("bert", "latency"): 2.5, ("gpt2", "train"): 2.0}
TARGET_NOTE = ("from the issue, for H100, bfloat16: BERT >= 2.5x HF eager and >= 1.5x HF sdpa; "
               "GPT2 training step >= 2x HF eager; generation >= 1.5x HF sdpa in tokens/s "
               "(the sdpa ratios are speedup_vs_best_baseline when sdpa is the fastest baseline).")

CASES = [("bert", "fwd", "padded"), ("bert", "fwd", "latency"), ("gpt2", "train", "train"),
         ("gpt2", "generate", "B=1"), ("gpt2", "generate", "B=16"),  # CPU: B=1 and B=4
         ("gpt2", "generate", "B=1 static"), ("gpt2", "generate", "B=16 static"),  # compile last
         ("bert", "fwd", "latency compiled"), ("bert", "fwd", "padded compiled"),
         ("gpt_bigcode", "generate", "B=16 padded")]
STATIC, COMPILED = " static", " compiled"
# The cases that compile, by (variant, impl), that the quick GPU pass runs (the rest: --full).
QUICK_COMPILING_CASES = {("B=1 static", SDPA), ("B=1 static", AUTO), ("latency compiled", SDPA),
                         ("latency compiled", AUTO), ("padded compiled", SDPA),
                         ("padded compiled", AUTO)}
IMPLS = {"fwd": (EAGER, SDPA) + BACKENDS + (AUTO,), "train": (EAGER, SDPA) + BACKENDS + (AUTO,),
         "generate": (SDPA,) + BACKENDS + (AUTO,)}


def sizes(device):
    return GPU_SIZES if device.type == "cuda" else CPU_SIZES


def dtype_for(device):
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def pytest_generate_tests(metafunc):
    if "impl" not in metafunc.fixturenames:
        return
    cases = [(model, direction, variant, impl) for model, direction, variant in CASES
             for impl in IMPLS[direction]]
    metafunc.parametrize("model_name,direction,variant,impl", cases,
                         ids=[f"{m}-{d}-{v}-{i}" for m, d, v, i in cases])


def build(model_name, impl, device):
    """The model for `impl`: transformers with that attention implementation (a baseline), or
    patched by fastattn on that backend. Same random weights for every impl."""
    config = sizes(device)[model_name]
    if impl == AUTO and device.type != "cuda":
        pytest.skip("the automatic backend choice on CPU is the torch backend: measured as 'torch'")
    if impl not in (EAGER, SDPA, AUTO):
        harness.skip_unless_backend_runs(impl, device)
    torch.manual_seed(0)
    model = MODEL_CLASSES[model_name](config).to(device, dtype_for(device)).eval()
    model.set_attn_implementation(EAGER if impl == EAGER else SDPA)
    if impl in (EAGER, SDPA):
        return model
    return fastattn.patch(model, backend=None if impl == AUTO else impl)


def forward_flops(config, lengths, causal):
    """Useful FLOPs of one forward over sequences of `lengths` real tokens."""
    hidden = config.hidden_size
    inner = getattr(config, "intermediate_size", None) or getattr(config, "n_inner", None) or 4 * hidden
    tokens, squares = sum(lengths), sum(length * length for length in lengths)
    per_layer = 2 * tokens * (4 * hidden * hidden + 2 * hidden * inner)
    per_layer += 4 * squares * hidden // (2 if causal else 1)
    return config.num_hidden_layers * per_layer


def case_padding(direction, variant):
    """Where a case's batch is padded: "right" (BERT's padded cases), "left" (generation prompts of
    a "... padded" case, as batched generation pads them) or None (every token real)."""
    if direction == "fwd" and variant.startswith("padded"):
        return "right"
    if direction == "generate" and variant.endswith(" padded"):
        return "left"
    return None


def padded_batch(batch, seqlen, device, padding=None, seed=0):
    """ids, mask, real lengths. padding "right" or "left": real lengths uniform in
    [0.2, 1] x seqlen, padded on that side; None: every token real."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 1000, (batch, seqlen), generator=generator)
    lengths = torch.full((batch,), seqlen)
    if padding is not None:
        lengths = torch.randint(int(0.2 * seqlen), seqlen + 1, (batch,), generator=generator)
    positions = torch.arange(seqlen)
    if padding == "left":
        positions = positions.flip(0)
    mask = (positions < lengths[:, None]).long()
    return ids.to(device), mask.to(device), lengths.tolist()


def generation_batch(variant, size):
    """The batch of a generation case: "B=1 ..." the first of size["generate_batches"], "B=16 ..."
    the second (B=4 on CPU)."""
    batches = size["generate_batches"]
    return batches[{f"B={b}": i for i, b in enumerate(GPU_SIZES["generate_batches"])}[
        variant.split()[0]]]


def _time_generation(benchmark, device, fn):
    """Generation runs for seconds: a few runs, not timing.py's hundred."""
    timing = time_fn(fn, device, warmup_ms=1.0, budget_ms=1.0, min_runs=3, max_runs=3,
                     hide_host=False)
    benchmark.pedantic(fn, rounds=1, iterations=1)
    return timing


def test_model(benchmark, bench_device, bench_device_info, bench_results, quick,
               model_name, direction, variant, impl):
    device, size = bench_device, sizes(bench_device)
    if quick and device.type == "cuda" and impl == "torch":
        # The quick pass on a lent GPU has minutes (its model cases were cut off at the budget on
        # the H200, 2026-11-26): the torch backend, a fallback the automatic choice never takes on
        # a GPU, gives its slot to "auto". (Its training step took 2.6 s there: attention dropout
        # drawn from the Philox stream with torch integer ops.)
        pytest.skip("quick GPU pass: the torch backend (a fallback on GPUs) is measured by --full")
    compiles = variant.endswith(STATIC) or variant.endswith(COMPILED)
    if variant.endswith(COMPILED) and device.type != "cuda":
        pytest.skip("CUDA graphs (mode reduce-overhead) are what this case measures: GPU only")
    if quick and device.type == "cuda" and compiles and (variant, impl) not in QUICK_COMPILING_CASES:
        pytest.skip("quick GPU pass: each compiling case takes tens of seconds; sdpa and auto "
                    "here, the rest with --full")
    if quick and device.type == "cuda" and model_name == "gpt_bigcode" and impl not in (SDPA, AUTO):
        pytest.skip("quick GPU pass: GPTBigCode generation against sdpa with the automatic choice "
                    "only; every backend with --full")
    model = build(model_name, impl, device)
    config, extra = model.config, {}
    benchmark.group = f"{OP} {model_name} {direction} {variant}"
    if direction == "fwd":
        batch, seqlen = size[variant.removesuffix(COMPILED)]
        padding = case_padding(direction, variant)
        ids, mask, lengths = padded_batch(batch, seqlen, device, padding)
        flops = forward_flops(config, lengths, causal=False)
        extra = {"real_tokens": sum(lengths), "padded_tokens": batch * seqlen}
        forward = torch.compile(model, mode="reduce-overhead") if variant.endswith(COMPILED) else model

        def run():
            with torch.no_grad():
                forward(input_ids=ids, attention_mask=mask)

        timing = harness.time_case(benchmark, impl, device, run, hide_host=False)
    elif direction == "train":
        batch, seqlen = size["train"]
        ids, _mask, lengths = padded_batch(batch, seqlen, device)
        model.train()  # dropout on, as in training
        flops = 3 * forward_flops(config, lengths, causal=True)

        def step():
            model(input_ids=ids, labels=ids).loss.backward()

        timing = harness.time_case(benchmark, impl, device, step,
                                   setup=lambda: model.zero_grad(set_to_none=True) or (),
                                   hide_host=False)
    else:
        batch = generation_batch(variant, size)
        new_tokens = size["new_tokens"]["quick" if quick else "full"]
        prompt, mask, _ = padded_batch(batch, size["prompt"], device,
                                       case_padding(direction, variant))
        cache = "static" if variant.endswith(STATIC) else "dynamic"
        options = {"cache_implementation": "static"} if cache == "static" else {}

        def generate():
            with torch.no_grad():
                model.generate(prompt, attention_mask=mask, max_new_tokens=new_tokens,
                               min_new_tokens=new_tokens, do_sample=False, pad_token_id=0,
                               **options)

        timing = _time_generation(benchmark, device, generate)
        flops = 2 * sum(p.numel() for p in model.transformer.h.parameters()) * batch * new_tokens
        extra = {"new_tokens": new_tokens, "tokens_per_s": batch * new_tokens / (timing.p50 * 1e-3),
                 "cache": cache}
        seqlen = size["prompt"]
    target = TARGETS.get((model_name, variant if model_name == "bert" else direction))
    on_target_device = device.type == "cuda" and impl in BACKENDS[1:] + (AUTO,)
    bench_results.add(benchmark, make_record(
        op=OP, direction=direction, variant=f"{model_name} {variant}", impl=impl,
        shape=(batch, seqlen), dtype=dtype_for(device), timing=timing, device_info=bench_device_info,
        flops=flops, extra=extra,
        targets={"min_speedup_vs_eager": target} if target and on_target_device else None,
        target_note=TARGET_NOTE if device.type == "cuda" else None))
