"""Host time per call of each fused op, per forward of a small patched BERT and per generated token
of a small patched GPT2: what Python and kernel launches cost, on shapes too small for the kernels
to matter.

    python -m benchmarks.host_overhead [--backend torch|triton|cuda ...] [--calls N] [--profile OP]

Why: the first GPU runs (benchmarks/results/NOTES.md, H200) found the patched models and the small
op cases host-bound: the GPU waited for Python. This measures that host time directly and
repeatably, also on a machine without a GPU:

- on a GPU, each call is timed to its return without synchronising (launches are asynchronous, so
  that is the host's share; the tiny shapes keep the device ahead of it);
- on CPU, the torch backend runs as it is (its tiny kernels cost little), and the triton backend
  runs its host code for real with every kernel launch replaced by a no-op (Triton's interpreter
  front end, TRITON_INTERPRET=1, is what accepts CPU tensors): the number is fastattn's own Python,
  without Triton's launch cost (about 10-20 us per launch on GPUs, triton-lang/triton #3648).

Each op is compared with its eager composition of stock torch ops (what an unpatched model runs):
a fused op launches fewer kernels, so its host time should not exceed that. `--profile OP` prints
cProfile's table for one op (OP as in the table, e.g. "ffn fwd+bwd").
"""

import argparse
import contextlib
import cProfile
import os
import pstats
import sys
import time

if __name__ == "__main__":  # before fastattn (and Triton's kernels) are imported
    import torch

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import fastattn  # noqa: E402

# Shapes: small enough that no kernel (nor the CPU's torch ops) costs much next to the host work.
TOKENS, HIDDEN, HEADS, INNER = 16, 64, 4, 256
HEAD_DIM = HIDDEN // HEADS
BACKENDS = ("torch", "triton", "cuda")
EAGER = "eager"


@contextlib.contextmanager
def stubbed_triton_launches():
    """Every interpreted Triton launch a no-op inside the block: host code runs, kernels do not.
    Yields a dict kernel name -> launches, filled as they happen."""
    from triton.runtime.interpreter import InterpretedFunction

    launches, real_run = {}, InterpretedFunction.run

    def run(self, *args, **kwargs):
        name = self.fn.__name__
        launches[name] = launches.get(name, 0) + 1

    InterpretedFunction.run = run
    try:
        yield launches
    finally:
        InterpretedFunction.run = real_run


def _tensor(*shape, device, dtype, grad=False):
    return torch.randn(*shape, device=device, dtype=dtype).requires_grad_(grad)


def op_cases(device, dtype):
    """name -> (inputs factory(grad), eager fn(inputs), fastattn fn(inputs, backend))."""
    def ln_inputs(grad):
        return (_tensor(TOKENS, HIDDEN, device=device, dtype=dtype, grad=grad),
                _tensor(TOKENS, HIDDEN, device=device, dtype=dtype, grad=grad),
                _tensor(HIDDEN, device=device, dtype=dtype, grad=grad),
                _tensor(HIDDEN, device=device, dtype=dtype, grad=grad))

    def gelu_inputs(grad):
        return (_tensor(TOKENS, INNER, device=device, dtype=dtype, grad=grad),
                _tensor(INNER, device=device, dtype=dtype, grad=grad))

    def ffn_inputs(grad):
        return (_tensor(TOKENS, HIDDEN, device=device, dtype=dtype, grad=grad),
                _tensor(INNER, HIDDEN, device=device, dtype=dtype, grad=grad),
                _tensor(INNER, device=device, dtype=dtype, grad=grad),
                _tensor(HIDDEN, INNER, device=device, dtype=dtype, grad=grad),
                _tensor(HIDDEN, device=device, dtype=dtype, grad=grad))

    cu_seqlens = torch.tensor([0, TOKENS // 2, TOKENS], device=device, dtype=torch.int32)
    mask = torch.ones(2, TOKENS // 2, device=device, dtype=torch.bool)
    mask[0, -2:] = False

    def varlen_inputs(grad):
        return tuple(_tensor(TOKENS, HEADS, HEAD_DIM, device=device, dtype=dtype, grad=grad)
                     for _ in range(3))

    def dense_inputs(grad):
        return tuple(_tensor(2, HEADS, TOKENS // 2, HEAD_DIM, device=device, dtype=dtype, grad=grad)
                     for _ in range(3))

    def softmax_inputs(grad):
        return (_tensor(2, HEADS, TOKENS // 2, TOKENS // 2, device=device, dtype=dtype, grad=grad),)

    def varlen_eager(q, k, v):
        # What an unpatched model does instead: pad, attend with a mask (here one SDPA per batch).
        return torch.cat([F.scaled_dot_product_attention(
            *(t[start:end].transpose(0, 1) for t in (q, k, v))).transpose(0, 1)
            for start, end in ((0, TOKENS // 2), (TOKENS // 2, TOKENS))])

    def masked_softmax_eager(scores):
        return torch.softmax((scores * 0.5).masked_fill(~mask[:, None, None, :], float("-inf")), -1)

    return {
        "layer_norm_residual": (
            ln_inputs, lambda x, r, w, b: F.layer_norm(x + r, (HIDDEN,), w, b),
            lambda x, r, w, b, backend: fastattn.layer_norm_residual(x, r, w, b, backend=backend)),
        "bias_gelu": (
            gelu_inputs, lambda x, b: F.gelu(x + b),
            lambda x, b, backend: fastattn.bias_gelu(x, b, backend=backend)),
        "ffn": (
            ffn_inputs, lambda x, w1, b1, w2, b2: F.linear(F.gelu(F.linear(x, w1, b1)), w2, b2),
            lambda x, w1, b1, w2, b2, backend: fastattn.ffn(x, w1, b1, w2, b2, backend=backend)),
        "attention_varlen": (
            varlen_inputs, varlen_eager,
            lambda q, k, v, backend: fastattn.attention_varlen(
                q, k, v, cu_seqlens, cu_seqlens, TOKENS // 2, TOKENS // 2, backend=backend)),
        "attention (padding mask)": (
            dense_inputs, lambda q, k, v: F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask[:, None, None, :]),
            lambda q, k, v, backend: fastattn.attention(q, k, v, key_padding_mask=mask,
                                                        backend=backend)),
        "masked_softmax": (
            softmax_inputs, masked_softmax_eager,
            lambda scores, backend: fastattn.masked_softmax(scores, key_padding_mask=mask,
                                                            scale=0.5, backend=backend)),
    }


def _call(fn, inputs, backward):
    out = fn(*inputs)
    if backward:
        out.sum().backward()


def host_us_per_call(fn, inputs, backward, calls, device):
    """The best of 7 rounds of the mean host time of `calls` calls (no synchronisation inside):
    interference from the rest of the machine only ever adds time, so the minimum is the most
    repeatable estimate (as timeit advises)."""
    for _ in range(3):
        _call(fn, inputs, backward)
    rounds = []
    for _ in range(7):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(calls):
            _call(fn, inputs, backward)
        rounds.append((time.perf_counter() - start) / calls)
    return 1e6 * min(rounds)


def backend_runs(name, device):
    return fastattn.available_backends()[name]["available"] and (
        name != "cuda" or device.type == "cuda")


def measure_ops(device, dtype, backends, calls, profile_op=None):
    """Yields one row per op case: {"case": name, "eager": us, <backend>: us, ...}."""
    for op, (make_inputs, eager_fn, fused_fn) in op_cases(device, dtype).items():
        for backward in (False, True):
            label = f"{op} {'fwd+bwd' if backward else 'fwd'}"
            inputs = make_inputs(backward)
            row = {"case": label, EAGER: host_us_per_call(eager_fn, inputs, backward, calls, device)}
            for name in backends:
                fn = (lambda *args, _name=name: fused_fn(*args, _name))  # noqa: E731
                row[name] = host_us_per_call(fn, inputs, backward, calls, device)
                if profile_op == label:
                    _profile(lambda: [_call(fn, inputs, backward) for _ in range(calls)],
                             f"{label}, backend {name}")
            yield row


def _model_variants(model_class, config, device, dtype, backends):
    """(impl, model) for the unpatched model (eager and sdpa attention) and the model patched with
    each backend: the same random weights every time."""
    for impl in (EAGER, "sdpa") + tuple(backends):
        torch.manual_seed(0)
        model = model_class(config).to(device, dtype).eval()
        model.set_attn_implementation(EAGER if impl == EAGER else "sdpa")
        if impl not in (EAGER, "sdpa"):
            fastattn.patch(model, backend=impl)
        yield impl, model


def bert_forward_ms(device, dtype, backends, calls):
    """ms per forward of a 12-layer BERT of hidden 64 on one sequence of 128 tokens (host-bound)."""
    from transformers import BertConfig, BertModel

    config = BertConfig(hidden_size=HIDDEN, num_hidden_layers=12, num_attention_heads=HEADS,
                        intermediate_size=INNER, vocab_size=1000)
    ids = torch.randint(1, 1000, (1, 128), device=device)
    mask = torch.ones_like(ids)
    row = {"case": "bert 12 layers 1x128 fwd"}
    for impl, model in _model_variants(BertModel, config, device, dtype, backends):
        with torch.no_grad():
            row[impl] = host_us_per_call(lambda: model(input_ids=ids, attention_mask=mask), (),
                                         False, max(1, calls // 20), device) / 1e3
    return row


def gpt2_token_ms(device, dtype, backends, calls, new_tokens=16, batch=1):
    """ms per generated token of a 12-layer GPT2 of hidden 64 (greedy, KV cache, after a 16-token
    prompt): what a step of host-bound generation costs, layer modules, cache and ops together.
    With batch > 1 the prompts are left-padded to 16 (row b has 3 * b pad tokens), as batched
    generation pads them: every step then carries a key padding mask."""
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=1000, n_embd=HIDDEN, n_layer=12, n_head=HEADS, n_positions=64)
    prompt = torch.randint(1, 1000, (batch, 16), device=device)
    mask = torch.ones_like(prompt)
    for b in range(batch):
        mask[b, :3 * b] = 0
    row = {"case": "gpt2 12 layers, per new token" if batch == 1 else
           f"gpt2 {batch} left-padded, per new token"}
    for impl, model in _model_variants(GPT2LMHeadModel, config, device, dtype, backends):

        def generate(model=model):
            with torch.no_grad():
                model.generate(prompt, attention_mask=mask, max_new_tokens=new_tokens,
                               min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)

        ms = host_us_per_call(generate, (), False, max(1, calls // 100), device) / 1e3
        row[impl] = ms / new_tokens
    return row


def _profile(fn, title):
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    print(f"\n== cProfile: {title} ==")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(25)


def print_table(rows, columns, unit):
    """Prints each row as it arrives (a run cut off by a time budget keeps what it measured)."""
    print(f"\n{'case':34s}" + "".join(f"{c:>10s}" for c in columns) + f"   ({unit} per call)",
          flush=True)
    for row in rows:
        print(f"{row['case']:34s}" + "".join(
            f"{row[c]:10.1f}" if c in row else f"{'-':>10s}" for c in columns), flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", action="append", choices=BACKENDS)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--profile", metavar="OP", help='cProfile one case, e.g. "ffn fwd+bwd"')
    parser.add_argument("--no-model", action="store_true",
                        help="skip the models (BERT forward, GPT2 generation)")
    args = parser.parse_args(argv)
    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    stub = device.type == "cpu" and fastattn.available_backends()["triton"]["available"]
    backends = [b for b in (args.backend or BACKENDS) if backend_runs(b, device)]
    print(f"device: {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, "
          f"{dtype}, torch {torch.__version__}; backends: {', '.join(backends)}"
          + ("; Triton launches stubbed (host code only)" if stub and "triton" in backends else ""))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # CPU kernels of these sizes gain nothing from threads, only noise
    try:
        with stubbed_triton_launches() if stub else contextlib.nullcontext():
            print_table(measure_ops(device, dtype, backends, args.calls, args.profile),
                        [EAGER] + backends, "us")
            if not args.no_model:
                print_table([bert_forward_ms(device, dtype, backends, args.calls),
                             gpt2_token_ms(device, dtype, backends, args.calls),
                             gpt2_token_ms(device, dtype, backends, args.calls, batch=4)],
                            [EAGER, "sdpa"] + backends, "ms")
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    main()
