"""gelu(x + bias): every available fastattn backend against eager PyTorch and torch.compile.

The FFN's middle: the first linear's output [tokens, 4 * hidden] plus its bias, activated, for
BERT's erf GELU and GPT2's tanh form. Forward and backward are separate cases; the backward case
times only the backward (the forward runs in the untimed setup before each run) and asks for the
gradients of x and bias as training does.
"""

import torch
import torch.nn.functional as F

import fastattn
from benchmarks import device_info as devices
from benchmarks import harness
from benchmarks.records import dtype_name, make_record

OP = "bias_gelu"

SHAPES = {
    ("cuda", "full"): ((8192, 3072), (8192, 4096), (32768, 3072)),
    ("cuda", "quick"): ((8192, 3072),),
    ("cpu", "full"): ((1024, 768),),
    ("cpu", "quick"): ((512, 768),),
}
DTYPES = {
    ("cuda", "full"): (torch.bfloat16, torch.float16, torch.float32),
    ("cuda", "quick"): (torch.bfloat16,),
    ("cpu", "full"): (torch.float32,),
    ("cpu", "quick"): (torch.float32,),
}
# The CPU suite stays short: one GELU form.
APPROXIMATIONS = {
    ("cuda", "full"): ("none", "tanh"),
    ("cuda", "quick"): ("none",),
    ("cpu", "full"): ("tanh",),
    ("cpu", "quick"): ("tanh",),
}

# From the issue, set for an H100: fused backends in bfloat16 at 8192 x 3072 (BERT-base's FFN).
TARGET_SHAPE, TARGET_COPY_FRACTION = (8192, 3072), 0.85
TARGET_NOTE = ("from the issue, for H100, fused backends (triton, cuda), bfloat16, 8192 x 3072: "
               ">= 85% of the measured copy bandwidth, forward and backward.")


def pytest_generate_tests(metafunc):
    if "impl" not in metafunc.fixturenames:
        return
    device_type = devices.bench_device().type
    mode = "quick" if metafunc.config.getoption("--quick") else "full"
    cases, ids = [], []
    for direction in ("fwd", "bwd"):
        for approximate in APPROXIMATIONS[(device_type, mode)]:
            for dtype in DTYPES[(device_type, mode)]:
                for shape in SHAPES[(device_type, mode)]:
                    for impl in harness.IMPLS:
                        cases.append((direction, approximate, dtype, shape, impl))
                        ids.append(f"{direction}-{approximate}-{dtype_name(dtype)}-"
                                   f"{shape[0]}x{shape[1]}-{impl}")
    metafunc.parametrize("direction,approximate,dtype,shape,impl", cases, ids=ids)


def eager_bias_gelu(x, bias, approximate):
    return F.gelu(x + bias, approximate=approximate)


def fastattn_bias_gelu(x, bias, approximate, *, backend):
    return fastattn.bias_gelu(x, bias, approximate=approximate, backend=backend)


def minimal_bytes(direction, shape, dtype):
    """Forward: read x and bias, write the activation. Backward: read dy, x and bias (the backward
    recomputes the activation's slope), write dx and dbias."""
    element = torch.empty(0, dtype=dtype).element_size()
    rows, hidden = shape
    if direction == "fwd":
        return element * (2 * rows * hidden + hidden)
    return element * (3 * rows * hidden + 2 * hidden)


def targets(device_info, impl, dtype, shape):
    if (device_info["type"] != "cuda" or impl not in ("triton", "cuda") or dtype != torch.bfloat16
            or tuple(shape) != TARGET_SHAPE):
        return None
    return {"min_gb_s": TARGET_COPY_FRACTION * device_info["copy_gb_s"]}


def make_inputs(shape, dtype, device, requires_grad):
    generator = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(shape, generator=generator, device=device, dtype=torch.float32)
    bias = 0.1 * torch.randn(shape[-1], generator=generator, device=device, dtype=torch.float32)
    return x.to(dtype).requires_grad_(requires_grad), bias.to(dtype).requires_grad_(requires_grad)


def test_bias_gelu(benchmark, bench_device, bench_device_info, bench_results,
                   direction, approximate, dtype, shape, impl):
    device, info = bench_device, bench_device_info
    fn = harness.implementation(impl, eager_bias_gelu, fastattn_bias_gelu, device)
    x, bias = make_inputs(shape, dtype, device, requires_grad=direction == "bwd")
    benchmark.group = f"{OP} {direction} {approximate} {dtype_name(dtype)} {shape[0]}x{shape[1]}"
    if direction == "fwd":
        timing = harness.time_case(benchmark, impl, device, lambda: fn(x, bias, approximate))
    else:
        dy = torch.randn(shape, device=device, dtype=dtype)
        timing = harness.time_case(benchmark, impl, device,
                                   lambda y: torch.autograd.grad(y, (x, bias), dy),
                                   setup=lambda: (fn(x, bias, approximate),))
    bench_results.add(benchmark, make_record(
        op=OP, direction=direction, impl=impl, shape=shape, dtype=dtype,
        variant=f"approximate={approximate}", bytes_moved=minimal_bytes(direction, shape, dtype),
        timing=timing, device_info=info, plot_x=shape[1], plot_x_name="hidden size",
        targets=targets(info, impl, dtype, shape),
        target_note=harness.h100_target_note(info, TARGET_NOTE)))
