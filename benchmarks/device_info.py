"""What ran the benchmarks: device name and slug, software versions, measured copy bandwidth."""

import platform
import re

import torch

from benchmarks.timing import measure_copy_bandwidth

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


def _version(module_name):
    try:
        module = __import__(module_name)
    except Exception as exc:  # triton may fail to import on odd machines; report, don't crash
        return f"unavailable ({type(exc).__name__})"
    return getattr(module, "__version__", "unknown")


def collect(device):
    """A JSON-ready dict describing `device` and the software stack, with bandwidth measured now."""
    import fastattn

    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        name, slug = props.name, slugify(props.name)
        extra = {"cuda": torch.version.cuda, "sm": f"{props.major}{props.minor}",
                 "memory_gib": round(props.total_memory / 2**30, 1)}
    else:
        name, slug = f"cpu-{_cpu_model()}", "cpu"
        extra = {"threads": torch.get_num_threads(), "note": CPU_NOTE}
    return {
        "name": name,
        "slug": slug,
        "type": device.type,
        "torch": torch.__version__,
        "triton": _version("triton"),
        "fastattn": fastattn.__version__,
        "backends": fastattn.available_backends(),
        "copy_gb_s": measure_copy_bandwidth(device),
        **extra,
    }
