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
from torch.autograd import forward_ad

from . import _extension, _tracing

BACKENDS = ("triton", "cuda", "torch")

# Fastest first, per op, for CUDA tensors. Keep in step with benchmarks/results/ (NOTES.md). From
# the H100 run of 2026-11-26, the first with kernels timed apart from host time (bf16, quick
# sizes); the H200 run before it timed the host for the small cases and misled two choices.
AUTO_ORDER = {
    # H100, 32768 rows: forward triton 2.73 vs cuda 2.62 TB/s at hidden 1024, 2.98 vs 2.80 at 4096;
    # backward 0.116 vs 0.174 ms and 0.335 vs 0.585. Host time per forward about equal (52 vs 56
    # us). (Up to 2026-11-26 cuda went first below hidden 2048 from the H200's host-bound timing.)
    "layer_norm_residual": ("triton", "cuda", "torch"),
    # H100, padding mask, 16x12 heads: forward triton 0.072 vs cuda 0.076 ms at 512x512 and 0.137
    # vs 0.197 at 256x2048; backward equal. cuda's host time is lower (18 vs 34 us a call).
    "masked_softmax": ("triton", "cuda", "torch"),
    # H100, 8192x3072: forward cuda 0.045 vs triton 0.049 ms, backward 0.078 vs 0.091.
    "bias_gelu": ("cuda", "triton", "torch"),
    # H100, BERT-base 8192 rows: up projection cuda (cuBLASLt) 0.108 vs triton 0.140 ms; forward +
    # backward 0.475 vs 0.787.
    "ffn": ("cuda", "triton", "torch"),
    # H100, S=2048: triton forward 3-7x faster than the cuda path (which also keeps [B, H, S, S]);
    # backward: see NOTES.md (D=128 dense, cuda 3.10 vs triton 4.87 ms before the tile sweep);
    # decode below.
    "attention": ("triton", "cuda", "torch"),
    "attention_varlen": ("triton", "cuda", "torch"),
}


# Where the order depends on the call's size: op -> (what the size is, largest size, order used up
# to it); larger calls, and calls without a size, use AUTO_ORDER.
AUTO_ORDER_UP_TO_SIZE = {
    # Decoding (size: query rows B * H * Sq of a call with Sq <= 16; ops/attention.py). H100, Sk
    # 4096, D=128, kernels alone: 32 rows (B=1) triton 0.044 vs cuda 0.045 ms, 512 rows triton 0.366
    # vs cuda 0.388. End to end, GPT2 generation is host-bound and cuda's decode (one C++ launch)
    # won: 192 rows (B=16, 12 heads) 578 ms with cuda against 714 with triton attention; B=1 587 vs
    # 724. 256 splits 192 (cuda ahead end to end) from 512 (triton ahead on the device).
    "attention": ("decode query rows", 256, ("cuda", "triton", "torch")),
    # Small LayerNorms (size: rows) are host-bound: decoding steps (B rows), BERT latency (128).
    # H100 (2026-11-26, second run), host time per call: forward cuda 28 vs triton 54 us, forward +
    # backward 328 vs 621 (Triton's Python launcher). The kernels differ by less than that up to
    # 2048 rows: forward within 4% (about 1 us at 2048 x 1024), triton's backward ahead by ~4 us
    # there (0.116 vs 0.174 ms at 32768 rows). Larger calls keep triton (its faster backward).
    "layer_norm_residual": ("rows", 2048, ("cuda", "triton", "torch")),
}


def auto_order(op, size=None):
    """The automatic choice's backend order for `op` on CUDA tensors, at `size` if given."""
    band = AUTO_ORDER_UP_TO_SIZE.get(op)
    if band is not None and size is not None and _tracing.size_at_most(size, band[1], unknown=False):
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


# Under torch.compile the answer is taken as a constant of the graph (it depends only on the
# installation): dynamo would otherwise trace through the cache below, and warn that it does.
@torch.compiler.assume_constant_result
def why_backend_cannot_run(name, device):
    """None when backend `name` can run on tensors of `device`, else the reason."""
    reason = _why_backend_cannot_run(name, device.type)
    if reason is None and device.type == "cuda" and name != "torch":
        reason = _why_gpu_cannot_run(name, device.index)
    return reason


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


# The triton and cuda backends need an Ampere or newer GPU: their kernels compute in bfloat16 on
# tensor cores and their tiles take up to 99 KB of shared memory a block (a T4, sm_75, has 64 KB);
# the extension is built for sm_80 and up. Older GPUs run the torch backend.
MIN_COMPUTE_CAPABILITY = (8, 0)


@functools.lru_cache(maxsize=None)
def _why_gpu_cannot_run(name, device_index):
    if not torch.cuda.is_available():
        return None  # no GPU to ask (and no CUDA tensor to run): dispatch asked about a device name
    if device_index is None:
        device_index = torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(device_index)
    if (major, minor) < MIN_COMPUTE_CAPABILITY:
        return (f"the {name} backend needs a GPU of compute capability "
                f"{'.'.join(map(str, MIN_COMPUTE_CAPABILITY))} or newer, and "
                f"{torch.cuda.get_device_name(device_index)} is {major}.{minor}")
    if name == "cuda":
        archs = _extension.load()[0].cuda_archs
        if not _extension.runs_on(archs, major, minor):
            built = "sm_" + archs.replace(";", ", sm_")
            return (f"fastattn._C was built for {built} and has no kernels for this GPU "
                    f"(sm_{major}{minor}); rebuild it with "
                    f"FASTATTN_CUDA_ARCHS=\"{major}{minor}\" (or a list that covers it)")
    return None


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


BACKEND_VARIABLE = "FASTATTN_BACKEND"
# os.environ.get costs about 0.7 us (the key encoded, a Mapping lookup, the value decoded), asked
# on every op call. os.environ keeps its encoded items in a plain dict, updated by every
# `os.environ[...] =` and `del` (monkeypatch.setenv included): reading that dict is current too.
_ENVIRON_ITEMS = getattr(os.environ, "_data", None)
_BACKEND_VARIABLE_KEY = (os.environ.encodekey(BACKEND_VARIABLE)
                         if hasattr(os.environ, "encodekey") else None)


def _environment_backend():
    """FASTATTN_BACKEND's value, or None when unset."""
    if _ENVIRON_ITEMS is None or _BACKEND_VARIABLE_KEY is None or torch.compiler.is_compiling():
        return os.environ.get(BACKEND_VARIABLE)  # what dynamo knows how to trace
    value = _ENVIRON_ITEMS.get(_BACKEND_VARIABLE_KEY)
    return None if value is None else os.environ.decodevalue(value)


# Forward-mode AD (torch.autograd.forward_ad): a kernel computes the primal output only, and its
# output would carry no tangent, which autograd reads as a zero tangent: a silent wrong answer. The
# torch backend's stock ops carry tangents (or raise where torch has no forward formula).
FORWARD_AD_REASON = ("forward-mode AD (dual tensors): its kernels compute no tangents; the torch "
                     "backend's stock ops do")
# float64 runs on the torch backend only, computed in float64.
FLOAT64_REASON = "float64 inputs: its kernels take float32, float16 and bfloat16"


def _kernels_cannot_take(inputs):
    """{backend: reason} for the kernel backends when the call has float64 inputs (the ops check
    that the others match inputs[0]'s dtype) or a dual tensor, else None. resolve_backend calls it
    only for float64 inputs or inside a dual_level(): it runs on every op call."""
    reason = None
    if inputs[0].dtype == torch.float64:
        reason = FLOAT64_REASON
    elif any(t is not None and forward_ad.unpack_dual(t).tangent is not None for t in inputs):
        reason = FORWARD_AD_REASON
    return None if reason is None else {name: reason for name in BACKENDS if name != "torch"}


def resolve_backend(op, device, requested=None, unsupported=None, size=None, inputs=()):
    """The backend that runs `op` on tensors of `device`.

    `unsupported` maps backend name -> reason for backends that cannot take this particular call
    (e.g. a hidden size beyond a kernel's limit). A backend chosen by the user that cannot run
    raises BackendUnavailableError; the automatic choice skips it. `size`: what auto_order's
    size-dependent orders go by, for ops that have one. `inputs`: the call's tensors (or None),
    main input first, looked at for float64 and forward-mode AD.
    """
    if inputs and (inputs[0].dtype == torch.float64 or forward_ad._current_level >= 0):
        kernels_cannot = _kernels_cannot_take(inputs)
        if kernels_cannot is not None:
            unsupported = {**kernels_cannot, **(unsupported or {})}
    if requested is not None:
        return _chosen(op, requested, "backend=", device, unsupported)
    name = _backend_in_context()
    if name is not None:
        return _chosen(op, name, "fastattn.use_backend", device, unsupported)
    name = _environment_backend()
    if name:
        return _chosen(op, name, BACKEND_VARIABLE, device, unsupported)
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
