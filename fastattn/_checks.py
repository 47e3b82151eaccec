"""Argument checks shared by the public ops. Each failure names the op, the argument, what was
expected and what was given: TypeError for wrong types and dtypes, ValueError for wrong values,
shapes and devices."""

import math
import numbers

import torch

# float64 runs on the torch backend only (fastattn._dispatch: the kernels take the other three).
FLOAT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
# Tensors and parameters, not subclasses (FakeTensor, FunctionalTensor, ...): what a fast accept
# (below) vouches for.
PLAIN_TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)


def _dtype_name(dtype):
    return str(dtype).replace("torch.", "")


def check_float_tensor(op, name, value):
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"fastattn.{op}: {name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(f"fastattn.{op}: {name} must be float32, float16, bfloat16 or float64, "
                        f"got {_dtype_name(value.dtype)}")
    return value


def plain_float_on(value, device):
    """Whether value is a plain float tensor on `device`: check_float_tensor and check_same_device
    accept it. For the ops' fast accepts: a usual call judged in one expression per argument, the
    checks' ~15 Python calls (about 9 of a LayerNorm's 40 us of host time on our CPU machine) run
    only when one is False, to name what is wrong."""
    return (type(value) in PLAIN_TENSOR_TYPES and value.dtype in FLOAT_DTYPES
            and value.device == device)


def check_shape(op, name, value, expected):
    if value.shape != tuple(expected):  # torch.Size is a tuple: no copy of it per call
        raise ValueError(f"fastattn.{op}: {name} must have shape {list(expected)}, got {list(value.shape)}")


def check_same_dtype(op, name, value, reference_name, reference):
    if value.dtype != reference.dtype:
        raise TypeError(f"fastattn.{op}: {name} must have the dtype of {reference_name} "
                        f"({_dtype_name(reference.dtype)}), got {_dtype_name(value.dtype)}")


def check_same_device(op, tensors):
    """tensors: (name, tensor) pairs; None tensors are skipped. The first one sets the device."""
    first_name = device = None
    for name, t in tensors:
        if t is None:
            continue
        if device is None:
            first_name, device = name, t.device
        elif t.device != device:
            raise ValueError(f"fastattn.{op}: {name} is on {t.device} but {first_name} is on "
                             f"{device}; all tensors must be on one device")


def check_real(op, name, value, *, low, high=None, high_inclusive=True):
    # Exact float and int first: isinstance against the numbers.Real ABC costs about a microsecond,
    # on every op call (eps, dropout_p, scale).
    if type(value) is not float and type(value) is not int and (
            isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise TypeError(f"fastattn.{op}: {name} must be a real number, got {type(value).__name__}")
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if not value >= low or too_high:  # `not >=` also rejects NaN
        bound = "" if high is None else f" and {'<=' if high_inclusive else '<'} {high}"
        raise ValueError(f"fastattn.{op}: {name} must be >= {low}{bound}, got {value}")
    return float(value)


def check_bool(op, name, value):
    if not isinstance(value, bool):
        raise TypeError(f"fastattn.{op}: {name} must be True or False, got {value!r}")
    return value


def as_rows(t):
    """t [..., last] reshaped to [rows, last] (a view where the strides allow). The row count is
    spelled out rather than -1: under torch.func.vmap over an empty batch the tensor holds no
    elements, and reshape cannot infer a -1 from them."""
    last = t.shape[-1]
    return t.reshape(t.numel() // last if last else math.prod(t.shape[:-1]), last)


def rows_view(t):
    """t as a 2D [rows, last dim] tensor whose last dim is contiguous (what every kernel reads)."""
    t2d = t if t.dim() == 2 else as_rows(t)
    return t2d if t2d.stride(-1) == 1 else t2d.contiguous()


def check_optional_real(op, name, value, *, low, high=None, high_inclusive=True):
    """check_real, with None let through (an argument whose default is computed)."""
    return None if value is None else check_real(op, name, value, low=low, high=high,
                                                 high_inclusive=high_inclusive)


def check_int(op, name, value, *, low):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"fastattn.{op}: {name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"fastattn.{op}: {name} must be >= {low}, got {value}")
    return value


def check_dim(op, name, value, ndim, layout):
    if value.dim() != ndim:
        raise ValueError(f"fastattn.{op}: {name} must be {ndim}D {layout}, got shape {list(value.shape)}")


def check_bool_mask(op, name, value):
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"fastattn.{op}: {name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dtype != torch.bool:
        raise TypeError(f"fastattn.{op}: {name} must be a bool tensor (True = real token), "
                        f"got {_dtype_name(value.dtype)}")
    return value


def last_dim_contiguous(t):
    """t itself when its last dim is contiguous (what the kernels index), else a contiguous copy."""
    return t if t.stride(-1) == 1 or t.shape[-1] <= 1 else t.contiguous()


def check_finite_real(op, name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"fastattn.{op}: {name} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"fastattn.{op}: {name} must be finite, got {value}")
    return float(value)


def check_choice(op, name, value, choices):
    if not isinstance(value, str):
        raise TypeError(f"fastattn.{op}: {name} must be a string, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"fastattn.{op}: {name} must be one of {', '.join(map(repr, choices))}, "
                         f"got {value!r}")
    return value
