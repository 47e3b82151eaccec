"""Synthetic benchmark records and device facts for the tests of the benchmark machinery: no timing,
no GPU, numbers chosen so that every derived field is known exactly."""

import os
import sys

# benchmarks/ is a package of the checkout (not installed): import it from the repository root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from benchmarks.records import finalize, make_record  # noqa: E402
from benchmarks.timing import Timing  # noqa: E402

BACKENDS = {"torch": {"available": True, "detail": "stock PyTorch"}}


def device(kind="cuda", name="NVIDIA Fake GPU 80GB", copy_gb_s=2000.0, gemm_tflops=500.0):
    slug = "cpu" if kind == "cpu" else name.lower().replace(" ", "-")
    info = {"name": name, "slug": slug, "type": kind, "torch": "2.x", "triton": "3.x",
            "fastattn": "0.1.0", "backends": BACKENDS, "commit": "abc1234",
            "copy_gb_s": copy_gb_s, "gemm_tflops": gemm_tflops, "gemm": "bfloat16 8192x8192x8192"}
    if kind == "cpu":
        info["note"] = "no GPU present"
    return info


def timing(ms, spread=0.02):
    return Timing(p20=ms * (1 - spread / 2), p50=ms, p80=ms * (1 + spread / 2), runs=50)


def record(info, impl, ms, *, op="layer_norm_residual", direction="fwd", size=1024,
           dtype="bfloat16", spread=0.02, flops=None, variant=None):
    kwargs = {"flops": flops} if flops is not None else {"bytes_moved": 4e9 * ms / 1e3}
    return make_record(op=op, direction=direction, impl=impl, shape=(4096, size), dtype=dtype,
                       timing=timing(ms, spread), device_info=info, plot_x=size,
                       plot_x_name="hidden size", variant=variant, **kwargs)


def run(info, cases, measured_at="2026-11-24T10:00:00+00:00"):
    """Finalized records of one run: cases are (impl, ms, kwargs) tuples."""
    records = [record(info, impl, ms, **kwargs) for impl, ms, kwargs in cases]
    return finalize(records, {"measured_at": measured_at, "commit": info["commit"], "mode": "quick"})
