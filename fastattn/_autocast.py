"""What the fused ops do under torch.autocast (mixed-precision training and inference).

Autocast casts the inputs of the stock ops it knows; fastattn's ops are custom ops (and in eager
mode Python functions) that it does not reach. Without this a patched model under autocast handed
LayerNorm a bfloat16 x (a linear's output) beside a float32 residual, which the op refused. Each op
follows the autocast policy of the stock ops it replaces (torch's autocast op lists), so a patched
model computes in the dtypes the unpatched one does:
- attention and the FFN run in autocast's lower-precision dtype, as SDPA and linear do;
- LayerNorm with its residual and the masked softmax run in float32, as layer_norm and softmax do
  (a patched block then returns float32 hidden states, as the unpatched one does).
bias_gelu needs nothing: its bias follows x's dtype with or without autocast.
The op itself then runs with autocast off, so every backend computes in the dtype chosen here.
"""

import torch

LOWER_PRECISION = "lower_precision"
FLOAT32 = "float32"


def enabled(x):
    """Whether autocast is on for x's device type (False for a non-tensor: the op's own argument
    checks then say what is wrong)."""
    if not isinstance(x, torch.Tensor):
        return False
    # Asked on every op call: is_cuda is a cheap attribute, x.device builds an object (~0.5 us).
    device_type = "cuda" if x.is_cuda else "cpu" if x.is_cpu else x.device.type
    return torch.is_autocast_enabled(device_type)


def call(op, policy, *args, **kwargs):
    """op(*args, **kwargs) with the floating-point tensors among args cast as `policy` says for
    the device of args[0], and autocast off inside."""
    device_type = args[0].device.type
    dtype = torch.get_autocast_dtype(device_type) if policy == LOWER_PRECISION else torch.float32
    cast = tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a
                 for a in args)
    with torch.autocast(device_type, enabled=False):
        return op(*cast, **kwargs)
