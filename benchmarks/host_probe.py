"""How fast this machine's host is right now, and what else is using its CPUs: a few lines to read
beside the host-bound benchmark cases of the same run.

    python -m benchmarks.host_probe [--label TEXT]

Why: on the second H100 run (2026-11-26) every host-side number was several times the first run's
(aten::empty 9.9 us a call against ~2, eager BERT 1x128 profiled at 9.0 ms of host against 5.4),
and the host-bound patched BERT came out at 13.5 ms against 6.1, with no code change to explain
it. Nothing recorded whether the host was busy or slow. This prints, in microseconds per call,
the median of a few rounds of a pure-Python loop, an empty tensor and a tiny add (on the GPU when
there is one: allocator, dispatcher and launch), then the load average and the processes using
the most CPU (ps: each one's share over its lifetime, so a long-running hog stands out). Run before
and after the steps of a GPU session; compare across runs.
"""

import argparse
import os
import statistics
import subprocess
import time

import torch

ROUNDS = 5


def _median_us(fn, calls):
    times = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(times)


def _python_work():
    total = 0
    for i in range(100):
        total += i * i
    return total


def probes(device, calls):
    """name -> median microseconds per call."""
    x = torch.ones(16, device=device)
    results = {
        "python loop of 100": _median_us(_python_work, calls),
        f"torch.empty on {device.type}": _median_us(lambda: torch.empty(16, device=device), calls),
        f"tiny add on {device.type}": _median_us(lambda: x + x, calls),
    }
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return results


def load_report(top=12):
    """Load average and the processes using the most CPU (Linux; empty where ps is missing)."""
    lines = []
    if hasattr(os, "getloadavg"):
        loads = ", ".join(f"{v:.2f}" for v in os.getloadavg())
        lines.append(f"load average (1, 5, 15 min): {loads}; CPUs: {os.cpu_count()}")
    try:
        ps = subprocess.run(["ps", "-eo", "pid,pcpu,etime,args", "--sort=-pcpu"], check=True,
                            capture_output=True, text=True, timeout=10).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        ps = []
    lines.extend(line[:160] for line in ps[:top + 1])
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="",
                        help="printed in the heading (e.g. the step it precedes)")
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"== host probe {args.label} ({time.strftime('%H:%M:%S')}) ==")
    for name, us in probes(device, args.calls).items():
        print(f"{name:28s} {us:8.2f} us")
    for line in load_report():
        print(line)


if __name__ == "__main__":
    main()
