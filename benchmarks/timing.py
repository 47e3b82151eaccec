"""The one timer every benchmark suite uses, and the device's two measured peaks: copy bandwidth
(the ceiling of memory-bound cases) and dense GEMM throughput (the ceiling of compute-bound ones).

CUDA: triton.testing.do_bench-style. Warm up, then time each run on its own with CUDA events, with
L2 flushed before every run (a 256 MB write, untimed) so that no run reads its inputs from the
previous run's cache. CPU: wall clock around each run, same quantiles, fewer runs.

What a CUDA time covers (`hide_host`). Between the start and end events the GPU runs the timed
kernels, but it can only run what the host has queued: when the host needs longer to queue a call
than the GPU needs to run it (small cases; Python autograd nodes), the events measure the host.
Op and kernel cases (hide_host=True, the default) judge kernels, so before each start event the GPU
is given idle time to wait out the host: a GPU-side sleep as long as the call's own measured host
time (x1.5, plus a margin), so the events see the kernels back to back. Whole-model cases
(hide_host=False) measure what a user waits for, host included: they keep only a small fixed
headroom. Either way the host time of the call (wall clock until it returns, no synchronisation)
is reported beside it (Timing.host_ms), and benchmarks/host_overhead.py measures host time alone.
On the first H200 runs (2026-11-26) the fixed ~60 us headroom was too short for Python autograd
nodes: every backward op case, stock-op torch backend and torch.compile included, ran at 0.2-0.5x
eager with wide spreads, while eager's C++ nodes were timed as kernels.

Written here instead of calling triton.testing.do_bench so that it works without triton or a GPU,
takes an untimed per-run `setup` (backward benchmarks redo the forward there), and behaves the same
with every triton version our machines carry.
"""

import functools
import time
from dataclasses import dataclass

import torch

FLUSH_BYTES = 256 * 1024 * 1024  # several times the largest L2 we run on (H100 50 MB, H200 60 MB)
QUANTILES = (0.2, 0.5, 0.8)
# GPU-side idle time queued before each start event, in clock cycles (torch.cuda._sleep counts
# cycles; 1e5 is ~50-70 us): the least every case gets, and all an end-to-end case gets.
HOST_HEADROOM_CYCLES = 100_000
# hide_host: the sleep covers HOST_HEADROOM_FACTOR x the call's host time + HOST_HEADROOM_MARGIN_MS,
# at most MAX_HOST_HEADROOM_MS (a call whose host time is that long is not a kernel case).
HOST_HEADROOM_FACTOR = 1.5
HOST_HEADROOM_MARGIN_MS = 0.05
MAX_HOST_HEADROOM_MS = 20.0


@dataclass(frozen=True)
class Timing:
    p20: float  # milliseconds
    p50: float
    p80: float
    runs: int
    host_ms: float = None  # median host time of the timed call (CUDA: until it returns, unsynchronised)
    hide_host: bool = None  # CUDA: whether the GPU waited out the host before each run (see above)


@functools.lru_cache(maxsize=None)
def _flush_buffer(device):
    return torch.empty(FLUSH_BYTES, dtype=torch.int8, device=device)


def _quantiles(samples_ms, **fields):
    q = torch.quantile(torch.tensor(samples_ms, dtype=torch.float64),
                       torch.tensor(QUANTILES, dtype=torch.float64))
    return Timing(*(float(v) for v in q), runs=len(samples_ms), **fields)


def _median(values):
    return sorted(values)[len(values) // 2]


@functools.lru_cache(maxsize=None)
def _sleep_cycles_per_ms(device):
    """How many torch.cuda._sleep cycles make a millisecond on `device`, measured now."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda._sleep(100_000)  # warm up
    start.record()
    torch.cuda._sleep(2_000_000)
    end.record()
    torch.cuda.synchronize(device)
    return 2_000_000 / max(start.elapsed_time(end), 1e-3)


def host_headroom_cycles(host_ms, cycles_per_ms):
    """Sleep cycles that let the GPU wait out `host_ms` of host time (never fewer than the fixed
    HOST_HEADROOM_CYCLES)."""
    wait_ms = min(MAX_HOST_HEADROOM_MS, HOST_HEADROOM_FACTOR * host_ms + HOST_HEADROOM_MARGIN_MS)
    return max(HOST_HEADROOM_CYCLES, int(wait_ms * cycles_per_ms))


def _run_count(estimate_ms, budget_ms, min_runs, max_runs):
    return int(max(min_runs, min(max_runs, budget_ms / max(estimate_ms, 1e-6))))


def _time_cuda(fn, setup, device, warmup_ms, budget_ms, min_runs, max_runs, hide_host):
    flush = _flush_buffer(device)
    sleep = getattr(torch.cuda, "_sleep", None)
    headroom = HOST_HEADROOM_CYCLES
    host_ms = []

    def one_run(start, end):
        args = setup() if setup else ()
        flush.zero_()
        if sleep is not None:
            sleep(headroom)
        start.record()
        began = time.perf_counter()
        fn(*args)
        host_ms.append((time.perf_counter() - began) * 1e3)
        end.record()

    def timed(n):
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                  for _ in range(n)]
        host_ms.clear()
        for start, end in events:
            one_run(start, end)
        torch.cuda.synchronize(device)
        return [start.elapsed_time(end) for start, end in events]

    # First call outside any estimate: it may compile (triton JIT, torch.compile, cuBLAS handles).
    timed(1)
    estimate = sorted(timed(5))[2]
    if hide_host and sleep is not None:
        headroom = host_headroom_cycles(_median(host_ms), _sleep_cycles_per_ms(device))
        estimate = sorted(timed(5))[2]  # the kernels' own time, now that the host is waited out
    timed(_run_count(estimate, warmup_ms, 1, max_runs))
    samples = timed(_run_count(estimate, budget_ms, min_runs, max_runs))
    return _quantiles(samples, host_ms=_median(host_ms), hide_host=hide_host and sleep is not None)


def _time_cpu(fn, setup, warmup_ms, budget_ms, min_runs, max_runs):
    def timed(n):
        samples = []
        for _ in range(n):
            args = setup() if setup else ()
            start = time.perf_counter()
            fn(*args)
            samples.append((time.perf_counter() - start) * 1e3)
        return samples

    # One call is warm-up and estimate at once: CPU cases are slow, and the suite must stay short.
    estimate = timed(1)[0]
    timed(_run_count(estimate, warmup_ms, 0, max_runs))
    samples = timed(_run_count(estimate, budget_ms, min_runs, max_runs))
    return _quantiles(samples, host_ms=_median(samples))  # on a CPU the host does the work


def time_fn(fn, device, *, setup=None, warmup_ms=None, budget_ms=None, min_runs=None, max_runs=None,
            hide_host=True):
    """p20/p50/p80 milliseconds of `fn(*setup())` on `device`; setup runs untimed before each run.

    Runs as many times as fit in `budget_ms`, within [min_runs, max_runs]. The defaults aim at
    about 100 runs on a GPU and a quick pass on a CPU. hide_host (CUDA): time the kernels, the GPU
    waiting out the host's time to queue them (op cases); False: end to end (whole models). See
    the module docstring.
    """
    device = torch.device(device)
    if device.type == "cuda":
        device = torch.device("cuda", device.index if device.index is not None
                              else torch.cuda.current_device())
        return _time_cuda(fn, setup, device, warmup_ms or 25.0, budget_ms or 200.0,
                          min_runs or 10, max_runs or 100, hide_host)
    return _time_cpu(fn, setup, warmup_ms or 20.0, budget_ms or 100.0, min_runs or 5, max_runs or 20)


@functools.lru_cache(maxsize=None)
def measure_copy_bandwidth(device):
    """Achievable device-memory copy bandwidth in GB/s (1e9 bytes), measured now on `device`.

    Bytes counted = read + write of a large tensor copy (1 GiB on GPU, far beyond L2; 64 MiB on CPU,
    beyond most last-level caches). Reporting % of this, not of a datasheet number, keeps the
    percentages comparable on any GPU, clock or ECC setting.
    """
    device = torch.device(device)
    size = (1 << 30) if device.type == "cuda" else (64 << 20)
    src = torch.empty(size, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    timing = time_fn(lambda: dst.copy_(src), device, budget_ms=300.0, max_runs=30)
    del src, dst
    return 2 * size / (timing.p50 * 1e-3) / 1e9


# bf16 is what the compute-bound suites (attention, FFN, models) run on a GPU; CPUs have no fast
# bf16 GEMM path everywhere, and the CPU suites run float32.
GEMM_DTYPES = {"cuda": torch.bfloat16, "cpu": torch.float32}
GEMM_SIZES = {"cuda": 8192, "cpu": 1024}


@functools.lru_cache(maxsize=None)
def measure_gemm_tflops(device):
    """Achievable dense matmul throughput in TFLOP/s (1e12 FLOPs), measured now on `device`.

    A square GEMM (8192^3 in bfloat16 on GPU, large enough to saturate tensor cores; 1024^3 in
    float32 on CPU, a fraction of a second on a small machine), 2*M*N*K FLOPs per run. Like the
    copy bandwidth, it is the machine's own ceiling at its current clocks, not a datasheet number.
    Returns (tflops, dtype name, size).
    """
    device = torch.device(device)
    dtype, n = GEMM_DTYPES.get(device.type, torch.float32), GEMM_SIZES.get(device.type, 1024)
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, generator=generator, device=device).to(dtype)
    b = torch.randn(n, n, generator=generator, device=device).to(dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    timing = time_fn(lambda: torch.mm(a, b, out=out), device, budget_ms=300.0, max_runs=30)
    del a, b, out
    return 2 * n**3 / (timing.p50 * 1e-3) / 1e12, str(dtype).replace("torch.", ""), n
