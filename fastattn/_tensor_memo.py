"""Host-side facts about a device tensor's values, remembered on the tensor until it changes.

Reading values back to the host is a device sync on GPUs; a mask or cu_seqlens is often passed
unchanged to every layer of a model, so the facts are kept on the tensor with its version counter,
which every in-place write bumps (through views too), and read again once it moves on.

Writes that bypass the counter are not seen: through `.data`, a DLPack alias or a raw pointer, and,
on the CPU, through a numpy array the tensor shares memory with (`torch.from_numpy`: a buffer
refilled for every request in a serving loop). So CPU tensors keep no facts: a CPU read is no
device sync, and recomputing is cheap. Inference tensors have no counter: their facts are
computed on every call too. On GPUs the `.data` and DLPack writes remain unseen (README, "Masks
and cu_seqlens").
"""

import torch

# Device types whose tensors keep no facts (the tests set it empty to check the keeping on CPU).
UNKEPT_DEVICE_TYPES = ("cpu",)


def _version(tensor):
    """The tensor's version counter, or None where facts may not be kept on it."""
    if tensor.is_inference() or tensor.device.type in UNKEPT_DEVICE_TYPES:
        return None
    return tensor._version


def remembered(tensor, key, compute):
    """compute(tensor) (host values), or what it gave last time if the tensor has not changed."""
    facts = peek(tensor, key)
    if facts is not None:
        return facts
    facts = compute(tensor)
    version = _version(tensor)
    if version is not None:
        setattr(tensor, key, (version, facts))
    return facts


def peek(tensor, key):
    """What remembered() or remember() last attached under `key`, if the tensor has not changed
    since; else None (so facts themselves are never None). Never computes (never reads the
    device)."""
    version = _version(tensor)
    memo = getattr(tensor, key, None)
    if version is not None and memo is not None and memo[0] == version:
        return memo[1]
    return None


def remember(tensor, key, facts):
    """Attach facts known without reading the tensor. An inference tensor is first copied into a
    normal one, so that later writes to it are seen; returns the tensor to use from now on."""
    if tensor.device.type in UNKEPT_DEVICE_TYPES:
        return tensor
    if tensor.is_inference():
        with torch.inference_mode(False):
            tensor = tensor.clone()
    setattr(tensor, key, (tensor._version, facts))
    return tensor
