"""Triton's Philox stream (`tl.randint4x`, whose four words' 16-bit halves attention dropout uses)
with stock torch ops, fast enough for the torch backend.

The same numbers as fastattn.reference.philox_words (the oracle, checked in the tests), computed
with fewer ops, since at the torch backend's small sizes each op's fixed cost is most of the time:
- a 32x32-bit product is one int64 multiply: both factors are below 2^32, so the 64 product bits
  are exact modulo 2^64 (int64 multiplication wraps on CPUs and GPUs), and a shift gives the high
  word. The oracle splits the constant into 16-bit halves instead: twice the ops.
- the words of a round live in two [2, n] tensors, (c0, c2) and the product rows; the round's
  word swap is done by writing the xors into the rows of the next (c0, c2) (`out=` row views) and
  by taking the low words as views of the product rows, unmasked: only their low 32 bits reach the
  next round's xor, whose result is masked once (eight ops a round, half of them on [2, n]; one
  op per word and step made fourteen on [n]).
- the keep test is made on the integers (u / 2^16 >= p is u >= ceil(p * 2^16), for the float32 p),
  with no float copy of the halves.
- the stream is made in chunks whose int64 temporaries stay in the cache (CPU) or L2 (GPU), with
  the offsets of each chunk generated in place, never the whole int64 offset tensor.
"""

import math
import struct

import torch

from .. import reference

_MASK32 = 0xFFFFFFFF
_HALF_BITS = 16
# Philox evaluations per chunk: [2, n] int64 temporaries of 512 KiB on CPU (L2), 2 MiB on GPUs.
CHUNK = {"cpu": 1 << 15}
DEFAULT_CHUNK = 1 << 17


def words(seed, offsets):
    """int64 [4, len(offsets)]: the four Philox words (tl.randint4x(seed, offsets)), each in
    [0, 2^32). Constants enter as Python scalars: a tensor made from host values would be a copy
    to the device and, on a GPU, a stream synchronisation per round."""
    pair = torch.empty(2, offsets.numel(), dtype=torch.int64, device=offsets.device)  # (c0, c2)
    torch.bitwise_and(offsets, _MASK32, out=pair[0])
    pair[1].zero_()
    low_b, low_a = offsets >> 32, None  # c1, c3 (c3 starts at 0)
    k0, k1 = seed & _MASK32, (seed >> 32) & _MASK32
    for _ in range(10):
        product = torch.empty_like(pair)
        torch.mul(pair[0], reference._PHILOX_ROUND_A, out=product[0])
        torch.mul(pair[1], reference._PHILOX_ROUND_B, out=product[1])
        high = product >> 32
        pair = torch.empty_like(product)
        torch.bitwise_xor(high[1], low_b, out=pair[0])  # c0 = hi(c2 * B) ^ c1 ^ k0
        if low_a is None:
            pair[1].copy_(high[0])
        else:
            torch.bitwise_xor(high[0], low_a, out=pair[1])  # c2 = hi(c0 * A) ^ c3 ^ k1
        pair[0].bitwise_xor_(k0)
        pair[1].bitwise_xor_(k1)
        pair &= _MASK32
        low_b, low_a = product[1], product[0]  # c1 = lo(c2 * B), c3 = lo(c0 * A)
        k0, k1 = (k0 + reference._PHILOX_KEY_A) & _MASK32, (k1 + reference._PHILOX_KEY_B) & _MASK32
    four = torch.stack((pair[0], low_b, pair[1], low_a))
    four[1::2].bitwise_and_(_MASK32)
    return four


def _half_threshold(dropout_p):
    """The smallest 16-bit half u kept: u / 2^16 >= p for the float32 p (exact: both sides are
    float32 values, and p * 2^16 is exact in float64)."""
    p32 = struct.unpack("f", struct.pack("f", dropout_p))[0]
    return max(0, math.ceil(p32 * (1 << _HALF_BITS)))


def attention_keep_mask(seed, batch, heads, seqlen_q, seqlen_k, dropout_p, device):
    """reference.attention_dropout_keep_mask, made here: bool [batch, heads, seqlen_q, seqlen_k]."""
    groups = reference.attention_dropout_groups(seqlen_k)
    rows, count = batch * heads * seqlen_q, batch * heads * seqlen_q * groups
    threshold = _half_threshold(dropout_p)
    keep = torch.empty(count, 4, 2, dtype=torch.bool, device=device)  # [offset, word, half]
    chunk = CHUNK.get(torch.device(device).type, DEFAULT_CHUNK)
    for first in range(0, count, chunk):
        last = min(first + chunk, count)
        offsets = torch.arange(first, last, dtype=torch.int64, device=device)
        four = words(int(seed), offsets).T  # [n, 4]
        torch.ge(four & ((1 << _HALF_BITS) - 1), threshold, out=keep[first:last, :, 0])
        torch.ge(four, threshold << _HALF_BITS, out=keep[first:last, :, 1])
    keep = keep.reshape(rows, groups * reference.ATTENTION_DROPOUT_GROUP)[:, :seqlen_k]
    return keep.reshape(batch, heads, seqlen_q, seqlen_k)
