"""Whole model steps under two automatic-choice orders for one op: which backend should go first
when the models are host-bound.

    python -m benchmarks.auto_order_ab [--op layer_norm_residual] [--order cuda,triton,torch
                                        --order triton,cuda,torch] [--case gpt2-train ...]

fastattn._dispatch.AUTO_ORDER is set from kernel timings alone (benchmarks/results/NOTES.md). A
model step of the benchmark cases is host-bound, where a backend's host time per call can matter
more than its kernel: triton LayerNorm's forward + backward cost 621 us of host time on an H100
against cuda's 328, its kernels a few microseconds less at these sizes. For each case (the models
and inputs of benchmarks/test_models.py, patched with backend=None) and each order, this prints
the host time of a step and the whole step (synchronised), the median of --steps steps. The
order applies to every call of the op: a size band the op has in
_dispatch.AUTO_ORDER_UP_TO_SIZE (LayerNorm's small calls on cuda) is lifted for the experiment.
"""

import argparse
import statistics

from benchmarks import device_info as devices
from benchmarks.profile_models import CASES, make_step, step_times
from fastattn import _dispatch


def time_step(step, device, steps):
    """(median host ms, median whole-step ms) over `steps` steps, after three warm-up steps."""
    host, whole = step_times(step, device, steps)
    return 1e3 * statistics.median(host), 1e3 * statistics.median(whole)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--op", default="layer_norm_residual", choices=sorted(_dispatch.AUTO_ORDER))
    parser.add_argument("--order", action="append",
                        help="comma-separated backends, first choice first (repeatable)")
    parser.add_argument("--case", action="append", choices=sorted(CASES))
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    default_orders = ["triton,cuda,torch", "cuda,triton,torch"]
    orders = [tuple(o.split(",")) for o in (args.order or default_orders)]
    for order in orders:
        unknown = set(order) - set(_dispatch.BACKENDS)
        if unknown:
            parser.error(f"--order {','.join(order)}: unknown backends {sorted(unknown)}")
    device = devices.bench_device()
    if device.type != "cuda":
        raise SystemExit("auto_order_ab: needs a CUDA GPU (on CPU the automatic choice is always "
                         "the torch backend)")
    original = _dispatch.AUTO_ORDER[args.op]
    band = _dispatch.AUTO_ORDER_UP_TO_SIZE.pop(args.op, None)
    print(f"device: {devices.device_slug(device)}; {args.op}; host / whole step ms (median of "
          f"{args.steps})" + (f"; its band ({band[0]} <= {band[1]}) lifted" if band else ""))
    try:
        for case in args.case or ["gpt2-train", "bert-padded", "bert-latency"]:
            for order in orders:
                _dispatch.AUTO_ORDER[args.op] = order
                step = make_step(case, "auto", device)
                host, whole = time_step(step, device, args.steps)
                print(f"{case:14} {','.join(order):22} {host:9.2f} {whole:9.2f}", flush=True)
                del step
    finally:
        _dispatch.AUTO_ORDER[args.op] = original
        if band is not None:
            _dispatch.AUTO_ORDER_UP_TO_SIZE[args.op] = band


if __name__ == "__main__":
    main()
