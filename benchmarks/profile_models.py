"""Where a model benchmark case spends its time: host (Python and launches) or device.

    python -m benchmarks.profile_models [--case bert-padded|bert-latency|gpt2-train]
                                        [--impl eager|sdpa|torch|triton|cuda|auto ...] [--steps N]

For each case and implementation (the models and inputs of benchmarks/test_models.py): the host
time of one step (wall clock to the return of the call, no synchronisation), the whole step with
the device's work (synchronised), kernel launches per step, and torch.profiler's ops by their own
host time and (on a GPU) kernels by their device time. When the host time is close to the whole
step, the GPU waits on Python: the case is host-bound and faster kernels will not show. The first
H200 runs (benchmarks/results/NOTES.md) suggested exactly that for the patched models; this says
which calls cost the host time, and which kernels the device time.
"""

import argparse
import time

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks import device_info as devices
from benchmarks import test_models

CASES = {"bert-padded": ("bert", "fwd", "padded"), "bert-latency": ("bert", "fwd", "latency"),
         "gpt2-train": ("gpt2", "train", "train")}
IMPLS = ("eager", "sdpa", "torch", "triton", "cuda", "auto")  # auto: fastattn.patch(model)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(case, impl, device):
    """The step function of a model case, as benchmarks/test_models.py times it."""
    model_name, direction, variant = CASES[case]
    model = test_models.build(model_name, impl, device)
    size = test_models.sizes(device)
    if direction == "fwd":
        batch, seqlen = size[variant]
        ids, mask, _ = test_models.padded_batch(batch, seqlen, device,
                                                test_models.case_padding(direction, variant))

        def step():
            with torch.no_grad():
                model(input_ids=ids, attention_mask=mask)
        return step
    batch, seqlen = size["train"]
    ids, _mask, _ = test_models.padded_batch(batch, seqlen, device)
    model.train()

    def step():
        model.zero_grad(set_to_none=True)
        model(input_ids=ids, labels=ids).loss.backward()
    return step


def step_times(step, device, steps):
    """([host seconds], [whole-step seconds]) of `steps` steps after three warm-up steps: host
    until the call returns (no synchronisation), whole until the device is done too."""
    for _ in range(3):
        step()
    _sync(device)
    host, whole = [], []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        host.append(time.perf_counter() - start)
        _sync(device)
        whole.append(time.perf_counter() - start)
    return host, whole


def measure(step, device, steps):
    """(host ms per step, whole step ms, kernel launches per step, [(title, profiler table)])."""
    host_times, whole_times = step_times(step, device, steps)
    host, whole = sum(host_times), sum(whole_times)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
        _sync(device)
    events = prof.key_averages()
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel",
                                                           "cudaLaunchKernelExC", "cuLaunchKernelEx"))
    tables = [("ops by their own host time",
               events.table(sort_by="self_cpu_time_total", row_limit=20, max_name_column_width=60))]
    if device.type == "cuda":  # which kernels the device time goes to
        tables.append(("kernels by their device time", events.table(
            sort_by="self_device_time_total", row_limit=20, max_name_column_width=60)))
    return 1e3 * host / steps, 1e3 * whole / steps, launches, tables


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES))
    parser.add_argument("--impl", action="append", choices=IMPLS)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--tables", action="store_true", help="print torch.profiler's table too")
    args = parser.parse_args(argv)
    device = devices.bench_device()
    summary = []
    for case in args.case or sorted(CASES):
        for impl in args.impl or IMPLS:
            try:
                step = make_step(case, impl, device)
            except (Exception, pytest.skip.Exception) as exc:  # cannot run here: say so, go on
                print(f"{case} {impl}: skipped: {type(exc).__name__}: {str(exc)[:160]}")
                continue
            host, whole, launches, tables = measure(step, device, args.steps)
            summary.append((case, impl, host, whole, launches))
            # Also now: a run cut off by its time budget (make gpu) keeps the cases it measured.
            print(f"{case} {impl}: host {host:.2f} ms, step {whole:.2f} ms, {launches} launches",
                  flush=True)
            if args.tables:
                for title, table in tables:
                    print(f"\n== {case} {impl}: {title} ==\n{table}", flush=True)
    print(f"\n{'case':14s} {'impl':7s} {'host ms':>9s} {'step ms':>9s} {'host/step':>9s} {'launches':>9s}")
    for case, impl, host, whole, launches in summary:
        print(f"{case:14s} {impl:7s} {host:9.2f} {whole:9.2f} {host / whole:9.0%} {launches:9d}")


if __name__ == "__main__":
    main()
