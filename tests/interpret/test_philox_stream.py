"""fastattn.reference's Philox port is Triton's: tl.randint4x's four words and tl.rand's uniform,
element for element, for 64-bit seeds and offsets above 2^32 (the counter's high word). The other
backends are checked against this port (tests/cpu: torch_philox, csrc/philox.cuh with g++)."""

import torch
import triton
import triton.language as tl

from fastattn import reference


@triton.jit
def _philox_kernel(OFFSETS, WORDS, UNIFORM, seed, N: tl.constexpr):
    i = tl.arange(0, N)
    offsets = tl.load(OFFSETS + i)
    w0, w1, w2, w3 = tl.randint4x(seed, offsets)
    tl.store(WORDS + i * 4 + 0, w0.to(tl.int64) & 0xFFFFFFFF)
    tl.store(WORDS + i * 4 + 1, w1.to(tl.int64) & 0xFFFFFFFF)
    tl.store(WORDS + i * 4 + 2, w2.to(tl.int64) & 0xFFFFFFFF)
    tl.store(WORDS + i * 4 + 3, w3.to(tl.int64) & 0xFFFFFFFF)
    tl.store(UNIFORM + i, tl.rand(seed, offsets))


def test_reference_philox_is_tritons():
    seed = 0x1234_5678_9ABC
    offsets = torch.tensor([0, 1, 2, 3, 1000, 2**31 - 1, 2**32 + 5, 3 * 2**32 + 123], dtype=torch.int64)
    words = torch.empty(len(offsets), 4, dtype=torch.int64)
    uniform = torch.empty(len(offsets), dtype=torch.float32)
    _philox_kernel[(1,)](offsets, words, uniform, seed, N=len(offsets))
    expected = torch.stack(reference.philox_words(seed, offsets), dim=-1)
    assert torch.equal(words, expected)
    assert torch.equal(uniform, reference.philox_uniform(seed, offsets))
