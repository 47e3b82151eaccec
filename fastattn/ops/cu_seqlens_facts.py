"""What a cu_seqlens tensor holds, read back to the host once per tensor instead of once per call.

attention_varlen must check cu_seqlens' values before a kernel indexes with them (bad offsets would
read out of bounds), and on a GPU every host copy is a device sync: one per layer of a BERT encoder
if done per call. So the host summary is remembered on the tensor itself, together with the
tensor's version counter, which every in-place write bumps (through views too): a changed version
reads the values again. unpad vouches for the cu_seqlens it builds from facts it already has on the
host, so the patched models never read cu_seqlens back at all.

Writes that bypass the version counter (through `.data`, numpy views or raw pointers) are not seen;
inference tensors have no version counter, so theirs are read on every call.
"""

from typing import NamedTuple

import torch

_ATTRIBUTE = "_fastattn_cu_seqlens_facts"


class CuSeqlensFacts(NamedTuple):
    first: int
    last: int
    shortest: int  # the smallest difference of neighbours (negative: cu_seqlens decreases); 0 when vouched
    longest: int


def _version(cu_seqlens):
    return None if cu_seqlens.is_inference() else cu_seqlens._version


def read(cu_seqlens):
    """The facts of cu_seqlens (1D, at least two entries): remembered ones while the tensor is
    unchanged, else a fresh host copy."""
    version = _version(cu_seqlens)
    remembered = getattr(cu_seqlens, _ATTRIBUTE, None)
    if version is not None and remembered is not None and remembered[0] == version:
        return remembered[1]
    values = cu_seqlens.tolist()
    lengths = [b - a for a, b in zip(values, values[1:])]
    facts = CuSeqlensFacts(values[0], values[-1], min(lengths), max(lengths))
    if version is not None:
        setattr(cu_seqlens, _ATTRIBUTE, (version, facts))
    return facts


def vouch(cu_seqlens, total, longest):
    """cu_seqlens built from non-negative lengths summing to `total`, the longest `longest`, with
    those facts attached (no device read). An inference tensor is copied (B + 1 ints) into a
    normal one first, so that later writes to it are seen. Returns the tensor to use. Under
    torch.compile tracing it returns cu_seqlens as it is: the checks are skipped there."""
    if torch.compiler.is_compiling():
        return cu_seqlens
    if cu_seqlens.is_inference():
        with torch.inference_mode(False):
            cu_seqlens = cu_seqlens.clone()
    setattr(cu_seqlens, _ATTRIBUTE, (cu_seqlens._version, CuSeqlensFacts(0, total, 0, longest)))
    return cu_seqlens
