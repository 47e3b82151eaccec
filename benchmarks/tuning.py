"""What the tile sweeps (benchmarks/tune_attention.py, benchmarks/tune_ffn.py) share: swapping a
settings function for the length of a block, the numerics rule they check a candidate with, and a
run that keeps its results when a time budget interrupts it."""

import contextlib
import json
import math

import torch

from fastattn.backends._device import tile_arch

# DESIGN §5: outputs within 2x, gradients within 3x eager's error from the float64 reference, plus
# a floor per dtype.
FLOOR = {torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 1e-2}
OUTPUT_FACTOR, GRAD_FACTOR = 2, 3


@contextlib.contextmanager
def replaced(module, name, replacement):
    """Inside the block, `module.name` is `replacement` (a settings function the launchers call on
    every launch, so the swap takes effect at once)."""
    original = getattr(module, name)
    setattr(module, name, replacement)
    try:
        yield original
    finally:
        setattr(module, name, original)


def max_error(a, b):
    return (a.double() - b.double()).abs().max().item()


def rule_failure(label, out, ref, eager, factor, dtype):
    """None when `out` keeps DESIGN §5's rule against the reference, else what failed."""
    error = max_error(out, ref)
    bound = factor * max_error(eager, ref) + FLOOR[dtype]
    if math.isfinite(error) and error <= bound:
        return None
    return f"{label}: error {error:.2e} > bound {bound:.2e}"


def check_with_gradients(runs, inputs, dout, labels, tag, dtype):
    """DESIGN §5's rule on one case: runs maps "out", "ref" and "eager" to functions of `inputs`,
    each run with the gradients of `inputs` against `dout`; labels name the output then each
    gradient. Returns the failures, each labelled with `tag`, [] if none."""
    results = {}
    for name, fn in runs.items():
        out = fn(*inputs)
        results[name] = (out.detach(), *torch.autograd.grad(out, inputs, dout))
    failures = []
    for index, label in enumerate(labels):
        failure = rule_failure(f"{label} {tag}", *(results[n][index] for n in ("out", "ref", "eager")),
                               OUTPUT_FACTOR if index == 0 else GRAD_FACTOR, dtype)
        if failure:
            failures.append(failure)
    return failures


def device_and_dtype():
    """The GPU in bfloat16, else the CPU under the Triton interpreter in float16 (the interpreter
    cannot do bfloat16 arithmetic, DESIGN §5), and the device's name for the report."""
    if torch.cuda.is_available():
        device = torch.device("cuda")
        return device, torch.bfloat16, torch.cuda.get_device_name(device)
    return torch.device("cpu"), torch.float16, "cpu (Triton interpreter)"


def candidates_arch(device):
    """The tile tables (80 or 90) whose settings a sweep replaces: the ones the GPU's launches use
    (fastattn.backends._device.tile_arch), or on CPU (the interpreter runs any tiles) 90, the
    architecture the candidates were screened for."""
    if device.type != "cuda":
        return 90
    return tile_arch(device)


def run_sweep(results, json_path, header):
    """Collects the sweep's result dicts (each already printed by the sweep); a KeyboardInterrupt
    (a time budget ran out, make gpu-tune) ends it early and keeps what was measured. Writes
    {**header, complete, results} as JSON to json_path if given. Returns 1 if any candidate failed
    its numerics check, else 0."""
    collected, interrupted = [], False
    try:
        for result in results:
            collected.append(result)
    except KeyboardInterrupt:
        interrupted = True
        print(f"interrupted after {len(collected)} results", flush=True)
    if json_path:
        with open(json_path, "w") as f:
            json.dump({**header, "complete": not interrupted, "results": collected}, f, indent=1)
    return 0 if all(r["numerics"] == "ok" for r in collected) else 1
