"""Facts about this installation, for `python -m fastattn info` and the benchmark reports."""

import platform

import torch

from . import __version__, _extension
from ._dispatch import AUTO_ORDER, AUTO_ORDER_UP_TO_SIZE, available_backends, triton_interpreter_enabled
from .backends._device import tile_arch_for


def _ffn_gemm_line(path):
    if path.startswith("cublaslt"):
        return f"cuda FFN GEMMs: {path}, with its bias and GELU-tanh epilogues and their backward"
    return "cuda FFN GEMMs: ATen's addmm (the extension was built without cuBLASLt)"


def _triton_version():
    try:
        import triton
    except ImportError:
        return None
    return triton.__version__


def _transformers_version():
    try:
        import transformers
    except ImportError:
        return None
    return transformers.__version__


def _devices():
    if not torch.cuda.is_available():
        return []
    devices = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        tiles = tile_arch_for(props.major, props.shared_memory_per_block_optin)
        devices.append({"index": index, "name": props.name, "capability": f"sm_{props.major}{props.minor}",
                        "memory_gib": round(props.total_memory / 2**30, 1),
                        "multiprocessors": props.multi_processor_count,
                        "triton_tiles": f"sm_{tiles}"})
    return devices


def collect_info():
    return {
        "fastattn": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "triton": _triton_version(),
        "transformers": _transformers_version(),
        "cuda_devices": _devices(),
        "extension": _extension.build_info(),
        "triton_interpreter": triton_interpreter_enabled(),
        "backends": available_backends(),
        "automatic_choice": automatic_choice(),
        "tf32_allowed": torch.backends.cuda.matmul.allow_tf32,
        "triton_attention_switched_off": triton_attention_switched_off(),
    }


# Which GPUs take each tile table (fastattn.backends._device.tile_arch_for).
_TILE_TABLE_GPUS = {80: "GPUs with less shared memory a block than Hopper's 227 KB",
                    90: "GPUs with Hopper's 227 KB of shared memory a block"}
_KERNEL_NAMES = {"backward_dkdv": "backward dK/dV", "backward_dq": "backward dQ"}


def triton_attention_switched_off():
    """[{"case", "roles", "why", "tf32_lifts"}]: the triton attention configurations switched off
    on GPUs (kernels/attention_settings.py: SPILLING, WRONG_ON_GPU), grouped by inputs; the
    automatic choice runs those calls on cuda or torch. [] without triton."""
    try:
        from .kernels.attention_settings import HEAD_DIMS, SPILLING, WRONG_ON_GPU, head_block
    except ImportError:
        return []

    def case(block_d, is_fp32, dropouts):
        dims = [str(d) for d in HEAD_DIMS if head_block(d) == block_d]
        with_dropout = {(True,): " with dropout", (False,): " without dropout"}.get(dropouts, "")
        return (f"{'float32' if is_fp32 else '16-bit'}, head dim{'s' * (len(dims) > 1)} "
                f"{', '.join(dims)}{with_dropout}")

    spilling = {}
    for (role, block_d, is_fp32, dropout), archs in SPILLING.items():
        spilling.setdefault((block_d, is_fp32, role, tuple(sorted(archs))), set()).add(dropout)
    groups = {}
    for (block_d, is_fp32, role, archs), dropouts in sorted(spilling.items()):
        where = "" if len(archs) > 1 else f" ({_TILE_TABLE_GPUS[archs[0]]})"
        entry = groups.setdefault(case(block_d, is_fp32, tuple(sorted(dropouts))) + where, {
            "roles": [], "why": "tiles spill registers under full-float32 (3-pass TF32) dots",
            "tf32_lifts": True})
        entry["roles"].append(role)
    for (role, block_d, is_fp32, dropout), why in sorted(WRONG_ON_GPU.items()):
        groups[case(block_d, is_fp32, (dropout,))] = {"roles": [role], "why": why,
                                                      "tf32_lifts": False}
    return [dict(case=case, **entry) for case, entry in groups.items()]


def automatic_choice():
    """op -> [(condition, backend order)]: what backend=None tries first on CUDA tensors."""
    table = {}
    for op, order in AUTO_ORDER.items():
        bands = []
        if op in AUTO_ORDER_UP_TO_SIZE:
            size, bound, small = AUTO_ORDER_UP_TO_SIZE[op]
            bands.append((f"{size} <= {bound}", list(small)))
            bands.append(("otherwise", list(order)))
        else:
            bands.append(("always", list(order)))
        table[op] = bands
    return table


def format_info(facts):
    lines = [f"fastattn {facts['fastattn']}  (python {facts['python']})",
             f"torch {facts['torch']} (CUDA {facts['torch_cuda'] or 'none: CPU build'}), "
             f"triton {facts['triton'] or 'not installed'}, "
             f"transformers {facts['transformers'] or 'not installed'}"]
    if facts["cuda_devices"]:
        for d in facts["cuda_devices"]:
            lines.append(f"device cuda:{d['index']}: {d['name']} ({d['capability']}, "
                         f"{d['memory_gib']} GiB, {d['multiprocessors']} SMs; Triton tiles of the "
                         f"{d['triton_tiles']} tables)")
    else:
        lines.append("device: no CUDA GPU visible (CPU only)")
    ext = facts["extension"]
    if ext["built"]:
        lines.append(f"extension fastattn._C: built for sm_{ext['cuda_archs'].replace(';', ', sm_')} "
                     f"with CUDA {ext['cuda_version']}")
        lines.append(_ffn_gemm_line(ext["ffn_gemm"]))
    else:
        lines.append(f"extension fastattn._C: not available: {ext['detail']}")
    lines.append(f"Triton interpreter (TRITON_INTERPRET=1): {'on' if facts['triton_interpreter'] else 'off'}")
    lines.append("backends:")
    for name, status in facts["backends"].items():
        mark = "yes" if status["available"] else "no "
        lines.append(f"  {name:7s} {mark}  {status['detail']}")
    lines.append("automatic choice (backend=None) on CUDA tensors, first that can run; CPU tensors: torch")
    for op, bands in facts["automatic_choice"].items():
        text = "; ".join(f"{' > '.join(order)}" + ("" if when == "always" else f" ({when})")
                         for when, order in bands)
        lines.append(f"  {op:21s} {text}")
    switched_off = facts["triton_attention_switched_off"]
    if switched_off:
        tf32 = facts["tf32_allowed"]
        lines.append("triton attention switched off on GPUs (such calls run on cuda or torch); "
                     "TF32 allowed (torch.backends.cuda.matmul.allow_tf32): "
                     f"{'yes' if tf32 else 'no'}")
        for entry in switched_off:
            note = ""
            if entry["tf32_lifts"]:
                note = ("; lifted now (TF32 is allowed)" if tf32
                        else "; lifted where TF32 is allowed")
            kernels = ", ".join(_KERNEL_NAMES.get(role, role) for role in entry["roles"])
            lines.append(f"  {entry['case']}: {kernels}: {entry['why']}{note}")
    return "\n".join(lines)
