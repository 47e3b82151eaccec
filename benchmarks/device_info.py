"""What ran the benchmarks: device name and slug, software versions and fastattn commit, and the
device's measured peaks (copy bandwidth, GEMM throughput)."""

import os
import platform
import re
import subprocess

import torch

from benchmarks.timing import measure_copy_bandwidth, measure_gemm_tflops

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Uncommitted changes here change what was measured; elsewhere (docs, tests) they do not.
SOURCE_PATHS = ("fastattn", "kernels", "csrc", "setup.py")

CPU_NOTE = "no GPU present: CPU wall-clock numbers, not representative of GPU performance"


def bench_device():
    """The device benchmarks run on: the current CUDA device when there is one, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _cpu_model():
    # platform.processor() is empty or just "x86_64" on most Linux machines; cpuinfo has the model.
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def slugify(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def device_slug(device=None):
    """The results-file name of `device` (default: the one benchmarks run on), measuring nothing."""
    device = device or bench_device()
    if device.type == "cuda":
        return slugify(torch.cuda.get_device_properties(device).name)
    return "cpu"


def _version(module_name):
    try:
        module = __import__(module_name)
    except Exception as exc:  # triton may fail to import on odd machines; report, don't crash
        return f"unavailable ({type(exc).__name__})"
    return getattr(module, "__version__", "unknown")


def _git(*args):
    try:
        done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def fastattn_commit():
    """`git rev-parse --short HEAD` of the checkout, "+dirty" when its sources have uncommitted
    changes (the numbers then belong to no commit); None outside a git checkout."""
    head = _git("rev-parse", "--short", "HEAD")
    if head is None:
        return None
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", *SOURCE_PATHS)
    return head + ("+dirty" if dirty else "")


def collect(device):
    """A JSON-ready dict describing `device` and the software stack, with bandwidth measured now."""
    import fastattn

    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        name, slug = props.name, device_slug(device)
        extra = {"cuda": torch.version.cuda, "sm": f"{props.major}{props.minor}",
                 "memory_gib": round(props.total_memory / 2**30, 1)}
    else:
        name, slug = f"cpu-{_cpu_model()}", "cpu"
        extra = {"threads": torch.get_num_threads(), "note": CPU_NOTE}
    gemm_tflops, gemm_dtype, gemm_n = measure_gemm_tflops(device)
    return {
        "name": name,
        "slug": slug,
        "type": device.type,
        "torch": torch.__version__,
        "triton": _version("triton"),
        "fastattn": fastattn.__version__,
        "backends": fastattn.available_backends(),
        "commit": fastattn_commit(),
        "copy_gb_s": measure_copy_bandwidth(device),
        "gemm_tflops": gemm_tflops,
        "gemm": f"{gemm_dtype} {gemm_n}x{gemm_n}x{gemm_n}",
        **extra,
    }
