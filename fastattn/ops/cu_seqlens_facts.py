"""What a cu_seqlens tensor holds, read back to the host once per tensor instead of once per call.

attention_varlen must check cu_seqlens' values before a kernel indexes with them (bad offsets would
read out of bounds), and on a GPU every host copy is a device sync: one per layer of a BERT encoder
if done per call. So the host summary is remembered on the tensor (fastattn._tensor_memo: read
again after an in-place write). unpad vouches for the cu_seqlens it builds from facts it already
has on the host, so the patched models never read cu_seqlens back at all.
"""

from typing import NamedTuple

import torch

from .. import _tensor_memo, _tracing

_KEY = "_fastattn_cu_seqlens_facts"


class CuSeqlensFacts(NamedTuple):
    first: int
    last: int
    shortest: int  # the smallest difference of neighbours (negative: cu_seqlens decreases); 0 when vouched
    longest: int


def _summarise(cu_seqlens):
    values = cu_seqlens.tolist()
    lengths = [b - a for a, b in zip(values, values[1:])]
    return CuSeqlensFacts(values[0], values[-1], min(lengths), max(lengths))


def read(cu_seqlens):
    """The facts of cu_seqlens (1D, at least two entries)."""
    return _tensor_memo.remembered(cu_seqlens, _KEY, _summarise)


def known(cu_seqlens):
    """The facts of cu_seqlens if already read or vouched for (and unchanged since), else None:
    for callers that may use them but must not cause a device read. A CPU tensor keeps no facts
    (fastattn._tensor_memo) and costs no device sync to read: it is read, unless a trace or
    torch.func transform runs the call (no values to read then)."""
    if cu_seqlens.device.type in _tensor_memo.UNKEPT_DEVICE_TYPES and not _tracing.shapes_only():
        return read(cu_seqlens)
    return _tensor_memo.peek(cu_seqlens, _KEY)


def vouch(cu_seqlens, total, longest):
    """cu_seqlens built from non-negative lengths summing to `total`, the longest `longest`, with
    those facts attached (no device read); returns the tensor to use (see _tensor_memo.remember).
    Under torch.compile tracing it returns cu_seqlens as it is: the checks are skipped there."""
    if torch.compiler.is_compiling():
        return cu_seqlens
    return _tensor_memo.remember(cu_seqlens, _KEY, CuSeqlensFacts(0, total, 0, longest))
