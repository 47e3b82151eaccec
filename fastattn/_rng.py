"""Dropout seeds.

Kernels draw dropout masks from a counter-based RNG (Philox, as Triton's `tl.rand`), keyed by a seed
and the element's flat index, so the backward regenerates the mask instead of storing it. The seed
itself comes from torch's default generator, so `torch.manual_seed` makes runs repeatable.
"""

import torch


def draw_dropout_seed(dropout_p):
    """A one-element int64 CPU tensor for dropout_p > 0, else None (and no generator state used)."""
    if dropout_p == 0.0:
        return None
    return torch.randint(0, 2**62, (1,), dtype=torch.int64)


def seed_value(seed):
    """The int a kernel takes for a seed tensor from draw_dropout_seed (None stays None). The tensor
    is on the CPU: reading it is no device sync."""
    return None if seed is None else int(seed.item())


def dropout_scale(dropout_p):
    """Multiplier for kept elements; 0 when everything is dropped (p == 1) so no inf*0 appears."""
    return 0.0 if dropout_p >= 1.0 else 1.0 / (1.0 - dropout_p)
