"""The dtype the torch backend computes softmax, GELU and statistics in."""

import torch


def compute_dtype(dtype):
    """float32 for 16-bit and float32 inputs; float64 for float64 ones (which only the torch
    backend takes): a float64 caller asks for float64 accuracy, as torch's own ops give it."""
    return torch.promote_types(dtype, torch.float32)
