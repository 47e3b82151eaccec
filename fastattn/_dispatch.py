"""Which backend runs an op.

Precedence: the op's `backend=` argument, then the innermost `use_backend(...)` context, then the
FASTATTN_BACKEND environment variable, then the automatic choice: CPU tensors use "torch"; CUDA
tensors use the first backend in auto_order(op, size) (AUTO_ORDER[op], or for some ops a
size-dependent order) that can run the call.
"""

import contextlib
import contextvars
import functools
import os

import torch

from . import _extension

BACKENDS = ("triton", "cuda", "torch")

# Fastest first, per op, for CUDA tensors. Keep in step with benchmarks/results/ (first GPU
# numbers: H200, 2026-11-26, NOTES.md; many small cases there were host-bound, so the orders below
# are provisional where the two kernels were close).
AUTO_ORDER = {
    # H200: triton ahead at hidden 4096 (4.2 vs 3.2 TB/s forward, 1.02x vs 0.90x eager backward);
    # narrower rows: AUTO_ORDER_UP_TO_SIZE.
    "layer_norm_residual": ("triton", "cuda", "torch"),
    # H200: forward about equal, backward cuda 1.7-1.9x faster.
    "masked_softmax": ("cuda", "triton", "torch"),
    # H200: cuda 2.4 vs triton 2.2 TB/s forward.
    "bias_gelu": ("cuda", "triton", "torch"),
    # H200: cuBLASLt up projection 0.107 ms vs the Triton GEMM's 0.132 (BERT-base, 8192 rows).
    "ffn": ("cuda", "triton", "torch"),
    # H200: triton forward 3.5x the cuda path at S=2048; the cuda path also keeps [B, H, S, S].
    "attention": ("triton", "cuda", "torch"),
    "attention_varlen": ("triton", "cuda", "torch"),
}


# Where the order depends on the call's size: op -> (what the size is, largest size, order used up
# to it); larger calls, and calls without a size, use AUTO_ORDER.
AUTO_ORDER_UP_TO_SIZE = {
    # H200, 32768 rows: at hidden 1024 cuda 3.04 vs triton 2.09 TB/s forward (0.44x vs 0.33x eager
    # backward, both host-bound); at 4096 triton ahead (above). The crossover lies between: 2048
    # splits the two measured sizes until one is measured there. Host time also favours cuda for
    # the small row counts of latency-bound models: its launch is one C++ call, Triton's a Python
    # launcher (benchmarks/host_overhead.py). BERT-base and GPT2 (768, 1024) fall here.
    "layer_norm_residual": ("hidden", 2048, ("cuda", "triton", "torch")),
    # Decoding (size: query rows B * H * Sq of a call with Sq <= 16; ops/attention.py). H200, Sk 4096,
    # D=128: at 32 rows (B=1) cuda 0.052 ms, triton 0.123 (both host-bound: cuda's three launches
    # are C++ calls, Triton's split and combine Python launches); at 512 rows (B=16) triton 0.252
    # vs cuda 0.272. 128 splits the two until measured between.
    "attention": ("decode query rows", 128, ("cuda", "triton", "torch")),
}


def auto_order(op, size=None):
    """The automatic choice's backend order for `op` on CUDA tensors, at `size` if given."""
    band = AUTO_ORDER_UP_TO_SIZE.get(op)
    if band is not None and size is not None and size <= band[1]:
        return band[2]
    return AUTO_ORDER[op]


class BackendUnavailableError(RuntimeError):
    """A backend was asked for by name but cannot run this call; the message says why."""


_context_backend = contextvars.ContextVar("fastattn_backend", default=None)


@torch.compiler.assume_constant_result
def _backend_in_context():
    """The backend fastattn.use_backend chose here, or None. torch.compile reads it once, when it
    traces (torch 2.11's dynamo cannot trace ContextVar.get; seen on an H200 machine, 2026-11-26):
    a compiled model keeps the backend it was traced with."""
    return _context_backend.get()


def _check_name(name, source):
    if name not in BACKENDS:
        raise ValueError(f"{source}: unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    return name


@contextlib.contextmanager
def use_backend(name):
    """Run the fastattn ops inside this block on backend `name` (None restores the automatic choice)."""
    if name is not None:
        _check_name(name, "fastattn.use_backend")
    token = _context_backend.set(name)
    try:
        yield
    finally:
        _context_backend.reset(token)


# Read once, at import: Triton itself decides interpreter or compiler when our kernels are defined
# (at import), so a later change of the variable would not change what runs.
_TRITON_INTERPRETER = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def triton_interpreter_enabled():
    return _TRITON_INTERPRETER


def _triton_import_error():
    try:
        import triton  # noqa: F401
    except ImportError as exc:
        return f"triton is not installed ({exc})"
    return None


def why_backend_cannot_run(name, device):
    """None when backend `name` can run on tensors of `device`, else the reason."""
    return _why_backend_cannot_run(name, device.type)


# Every op call asks (several times under the automatic choice); the answer depends only on the
# installation and the device type, so it is worked out once per pair.
@functools.lru_cache(maxsize=None)
def _why_backend_cannot_run(name, device_type):
    if name == "torch":
        return None
    if name == "triton":
        missing = _triton_import_error()
        if missing:
            return missing
        if device_type == "cuda":
            return None
        if device_type == "cpu" and triton_interpreter_enabled():
            return None
        return (f"the triton backend needs CUDA tensors, got {device_type} tensors "
                "(set TRITON_INTERPRET=1 before importing fastattn to run it on CPU tensors)")
    if name == "cuda":
        module, error = _extension.load()
        if module is None:
            return error
        if device_type != "cuda":
            return f"the cuda backend needs CUDA tensors, got {device_type} tensors"
        return None
    raise AssertionError(name)


def available_backends():
    """name -> {"available": bool, "detail": str}: can the backend run on this machine, and if not, why."""
    device = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if triton_interpreter_enabled():
        device = torch.device("cpu")
    status = {}
    for name in BACKENDS:
        reason = why_backend_cannot_run(name, device)
        if reason is None:
            detail = {"torch": "stock PyTorch ops, runs anywhere",
                      "triton": ("Triton interpreter on CPU tensors" if device.type == "cpu"
                                 else "Triton kernels on CUDA tensors"),
                      "cuda": "fastattn._C on CUDA tensors"}[name]
        status[name] = {"available": reason is None, "detail": detail if reason is None else reason}
    return status


def resolve_backend(op, device, requested=None, unsupported=None, size=None):
    """The backend that runs `op` on tensors of `device`.

    `unsupported` maps backend name -> reason for backends that cannot take this particular call
    (e.g. a hidden size beyond a kernel's limit). A backend chosen by the user that cannot run
    raises BackendUnavailableError; the automatic choice skips it. `size`: what auto_order's
    size-dependent orders go by, for ops that have one.
    """
    if requested is not None:
        return _chosen(op, requested, "backend=", device, unsupported)
    name = _backend_in_context()
    if name is not None:
        return _chosen(op, name, "fastattn.use_backend", device, unsupported)
    name = os.environ.get("FASTATTN_BACKEND")
    if name:
        return _chosen(op, name, "FASTATTN_BACKEND", device, unsupported)
    if device.type != "cuda":
        return "torch"
    for name in auto_order(op, size):
        if why_backend_cannot_run(name, device) is None and not (unsupported and name in unsupported):
            return name
    return "torch"


def _chosen(op, name, source, device, unsupported):
    """`name`, chosen by the user through `source`, once it is known to run this call."""
    if name not in BACKENDS:
        _check_name(name, f"fastattn.{op}: {source}")
    reason = why_backend_cannot_run(name, device) or (unsupported or {}).get(name)
    if reason is not None:
        raise BackendUnavailableError(
            f"fastattn.{op}: backend {name!r} (chosen by {source}) cannot run this call: {reason}")
    return name
