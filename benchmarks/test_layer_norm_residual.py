"""LayerNorm(x + residual): every available fastattn backend against eager PyTorch and torch.compile.

The inference/training hot path of BERT and GPT2 blocks: residual given, no dropout, forward
without returning the residual. Forward and backward are separate cases; the backward case times
only the backward (the forward runs in the untimed setup before each run).
"""

import pytest
import torch
import torch.nn.functional as F

import fastattn
from benchmarks import device_info as devices
from benchmarks import harness
from benchmarks.records import dtype_name, make_record

OP = "layer_norm_residual"
EPS = 1e-5

GPU_ROWS, CPU_ROWS = 32768, 2048
HIDDEN = {"full": (768, 1024, 4096, 8192, 16384), "quick": (1024, 4096)}
DTYPES = {
    ("cuda", "full"): (torch.bfloat16, torch.float16, torch.float32),
    ("cuda", "quick"): (torch.bfloat16,),
    ("cpu", "full"): (torch.float32, torch.bfloat16),
    ("cpu", "quick"): (torch.float32,),
}

# From the issue, set for an H100: fused backends in bfloat16 with >= 32k rows.
TARGET_ROWS, TARGET_FWD_HIDDEN = 32768, (1024, 4096)
TARGET_FWD = {"min_gb_s": 2700, "min_speedup_vs_eager": 1.6}
TARGET_BWD = {"min_speedup_vs_eager": 1.3}
TARGET_NOTE = ("from the issue, for H100, fused backends (triton, cuda), bfloat16, >= 32k rows: "
               "forward >= 2.7 TB/s and >= 1.6x eager at hidden 1024 and 4096; "
               "backward >= 1.3x eager.")


def pytest_generate_tests(metafunc):
    if "impl" not in metafunc.fixturenames:
        return
    device_type = devices.bench_device().type
    mode = "quick" if metafunc.config.getoption("--quick") else "full"
    rows = GPU_ROWS if device_type == "cuda" else CPU_ROWS
    cases, ids = [], []
    for direction in ("fwd", "bwd"):
        for dtype in DTYPES[(device_type, mode)]:
            for hidden in HIDDEN[mode]:
                for impl in harness.IMPLS:
                    cases.append((direction, dtype, rows, hidden, impl))
                    ids.append(f"{direction}-{dtype_name(dtype)}-{rows}x{hidden}-{impl}")
    metafunc.parametrize("direction,dtype,rows,hidden,impl", cases, ids=ids)


def eager_layer_norm_residual(x, residual, weight, bias):
    return F.layer_norm(x + residual, (x.shape[-1],), weight, bias, EPS)


def fastattn_layer_norm_residual(x, residual, weight, bias, *, backend):
    return fastattn.layer_norm_residual(x, residual, weight, bias, EPS, backend=backend)


def minimal_bytes(direction, rows, hidden, dtype):
    """Forward: read x, residual, weight, bias; write y. Backward: read dy, the saved h = x +
    residual and weight; write dh (the gradient of both x and residual without dropout), dweight,
    dbias. Per-row mean/rstd are left out: a kernel may recompute them."""
    element = torch.empty(0, dtype=dtype).element_size()
    if direction == "fwd":
        return element * (3 * rows * hidden + 2 * hidden)
    return element * (3 * rows * hidden + 3 * hidden)


def targets(device_info, impl, direction, dtype, rows, hidden):
    if (device_info["type"] != "cuda" or impl not in ("triton", "cuda") or dtype != torch.bfloat16
            or rows < TARGET_ROWS):
        return None
    if direction == "bwd":
        return TARGET_BWD
    return TARGET_FWD if hidden in TARGET_FWD_HIDDEN else None


def make_inputs(rows, hidden, dtype, device, requires_grad):
    generator = torch.Generator(device=device).manual_seed(0)

    def randn(*shape, scale=1.0, shift=0.0):
        t = torch.randn(*shape, generator=generator, device=device, dtype=torch.float32)
        return (t * scale + shift).to(dtype).requires_grad_(requires_grad)

    return (randn(rows, hidden), randn(rows, hidden), randn(hidden, scale=0.1, shift=1.0),
            randn(hidden, scale=0.1))


def test_layer_norm_residual(benchmark, bench_device, bench_device_info, bench_results,
                             direction, dtype, rows, hidden, impl):
    device, info = bench_device, bench_device_info
    fn = harness.implementation(impl, eager_layer_norm_residual, fastattn_layer_norm_residual, device)
    inputs = make_inputs(rows, hidden, dtype, device, requires_grad=direction == "bwd")
    benchmark.group = f"{OP} {direction} {dtype_name(dtype)} {rows}x{hidden}"
    if direction == "fwd":
        timing = harness.time_case(benchmark, impl, device, lambda: fn(*inputs))
    else:
        dy = torch.randn(rows, hidden, device=device, dtype=dtype)
        # The forward in the untimed setup builds a fresh graph each run; the timed part is the
        # backward alone, asked for the gradients of all four inputs as in training.
        timing = harness.time_case(benchmark, impl, device,
                                   lambda y: torch.autograd.grad(y, inputs, dy),
                                   setup=lambda: (fn(*inputs),))
    bench_results.add(benchmark, make_record(
        op=OP, direction=direction, impl=impl, shape=(rows, hidden), dtype=dtype,
        bytes_moved=minimal_bytes(direction, rows, hidden, dtype), timing=timing,
        device_info=info, plot_x=hidden, plot_x_name="hidden size",
        targets=targets(info, impl, direction, dtype, rows, hidden),
        target_note=harness.h100_target_note(info, TARGET_NOTE)))
