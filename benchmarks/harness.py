"""What every op suite does per case: pick the implementation (a fastattn backend or a baseline),
skip it with a visible reason when it cannot run, and time it with timing.py and pytest-benchmark.
"""

import functools

import pytest
import torch

import fastattn
from benchmarks.records import COMPILED, EAGER
from benchmarks.timing import time_fn

IMPLS = (EAGER, COMPILED, "torch", "triton", "cuda")  # baselines first: a reader sees them first
PEDANTIC_ROUNDS = {"cuda": 10, "cpu": 2}


def _synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def skip_unless_backend_runs(name, device):
    status = fastattn.available_backends()[name]
    if not status["available"]:
        pytest.skip(f"backend {name!r} unavailable: {status['detail']}")
    if name == "triton" and device.type == "cpu":
        pytest.skip("backend 'triton' on CPU is the Triton interpreter: a correctness tool, "
                    "timing it says nothing")


def implementation(impl, eager_fn, fastattn_fn, device):
    """The callable for `impl`: the eager composition, its torch.compile, or fastattn on a backend."""
    if impl == EAGER:
        return eager_fn
    if impl == COMPILED:
        # A fresh dynamo cache per case: one function compiled for many shapes would hit the
        # recompile limit (then silently run eager) or turn dynamic-shape and slower.
        torch._dynamo.reset()
        return torch.compile(eager_fn, dynamic=False)
    skip_unless_backend_runs(impl, device)
    return functools.partial(fastattn_fn, backend=impl)


def time_case(benchmark, impl, device, fn, setup=None, hide_host=True):
    """Time `fn(*setup())` (setup untimed); returns timing.py's Timing, also runs pytest-benchmark.
    hide_host=False for end-to-end cases (whole models): see benchmarks/timing.py.

    timing.py's numbers (device events, L2 flushed) are the ones reported; pytest-benchmark's
    wall-clock rounds (with a synchronize, so they cover the device work; no warm-up rounds, as
    time_fn has warmed up) are kept so that `pytest --benchmark-only` and its tools work as usual.
    """
    try:
        timing = time_fn(fn, device, setup=setup, hide_host=hide_host)
    except torch.OutOfMemoryError as exc:
        # Paths that materialise [B, H, Sq, Sk] scores (eager, the Megatron-style cuda attention)
        # do not fit at the long-sequence sizes: a visible skip, and the suite goes on.
        torch.cuda.empty_cache()
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        pytest.skip(f"{impl} ran out of device memory at this size: {first_line}")
    except Exception as exc:
        if impl != COMPILED:
            raise
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        pytest.skip(f"torch.compile of the eager composition failed on {device.type}: "
                    f"{type(exc).__name__}: {first_line}")

    def synced_fn(*args):
        fn(*args)
        _synchronize(device)

    def synced_setup():
        args = setup()
        _synchronize(device)
        return args, {}

    benchmark.pedantic(synced_fn, setup=synced_setup if setup else None,
                       rounds=PEDANTIC_ROUNDS.get(device.type, 2), iterations=1)
    return timing


def h100_target_note(device_info, note):
    """The issue's H100 targets as a report note: none on CPU, flagged as indicative on other GPUs."""
    if device_info["type"] != "cuda":
        return None
    if "H100" in device_info["name"]:
        return note
    return note + f" This is not an H100 ({device_info['name']}): indicative only."
