"""Device facts the launchers need, looked up once per device."""

import functools

import torch


def cuda_index(device):
    """The index of a CUDA torch.device (the current device when it names none)."""
    return device.index if device.index is not None else torch.cuda.current_device()


def multiprocessor_count(device):
    """SMs of a CUDA torch.device."""
    return _multiprocessor_count(cuda_index(device))


@functools.lru_cache(maxsize=None)
def _multiprocessor_count(device_index):
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def backward_program_count(device, n_rows, num_warps):
    """Programs for a row-walking backward: enough to fill the GPU at about half occupancy.

    Each program owns float32 partial sums of the weight gradients, so fewer programs mean less
    partial-sum traffic; on CPU (Triton interpreter) a handful keeps the test fast.
    """
    if device.type == "cuda":
        target = multiprocessor_count(device) * max(1, 32 // num_warps)
    else:
        target = 4
    return max(1, min(n_rows, target))
