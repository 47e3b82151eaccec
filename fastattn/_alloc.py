"""Output buffers for kernels. With FASTATTN_POISON_OUTPUTS=1 (the test suites set it) float
buffers start as NaN, so any element a kernel forgets to write makes the result non-finite.

The variable is read once, when fastattn is imported (like TRITON_INTERPRET): buffers are made
several times per op call, and an environment lookup each time was measurable host time
(benchmarks/host_overhead.py).
"""

import os

import torch

POISON_OUTPUTS = os.environ.get("FASTATTN_POISON_OUTPUTS", "0") == "1"


def _poison(tensor):
    if POISON_OUTPUTS and tensor.is_floating_point():
        tensor.fill_(float("nan"))
    return tensor


def empty_like(tensor, dtype=None):
    return _poison(torch.empty_like(tensor, dtype=dtype, memory_format=torch.contiguous_format))


def empty(shape, like, dtype=None):
    return _poison(torch.empty(shape, device=like.device, dtype=dtype or like.dtype))
