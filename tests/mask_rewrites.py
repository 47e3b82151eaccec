"""A key padding mask rewritten without a version bump between calls (a CPU tensor sharing memory
with a numpy buffer that a serving loop refills, or a write through `.data`) must give the answer
for its new values: CPU tensors keep no facts between calls (fastattn._tensor_memo). Before, the
second call reused the first call's facts (no padding at all; the old key bounds) and silently
attended to padded keys. Run by the cpu tier (torch backend) and the interpret tier (triton)."""

import torch

import fastattn
from fastattn import reference


def _qkv(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(3, 2, 6, 16, generator=generator) for _ in range(3)]


def rewrites():
    """(name, make(values) -> mask, write(mask, values)): ways to change a mask's values that
    bypass its version counter."""
    def from_numpy(values):
        buffer = values.numpy().copy()
        return torch.from_numpy(buffer), buffer

    def numpy_write(made, values):
        made[1][...] = values.numpy()

    def plain(values):
        mask = values.clone()
        return mask, mask

    def data_write(made, values):
        made[0].data.copy_(values)

    return [("numpy buffer", from_numpy, numpy_write), (".data", plain, data_write)]


NO_PADDING = torch.ones(3, 6, dtype=torch.bool)
PADDED = torch.tensor([[True] * 6, [True, True, True, False, False, False],
                       [False, False, True, True, True, True]])
# Each sequence of values starts from facts that the later values contradict: "no padding" (the
# torch backend then skips the mask), and key bounds narrower than the later ones (the kernels
# skip keys outside them).
SEQUENCES = ((NO_PADDING, PADDED, PADDED.flip(1)), (PADDED, PADDED.flip(1), NO_PADDING))


def check_attention_sees_the_new_values(make, write, causal, backend):
    q, k, v = _qkv()
    for values in SEQUENCES:
        made = make(values[0])
        mask = made[0]
        for i, value in enumerate(values):
            if i:
                write(made, value)
            assert torch.equal(mask, value) and mask._version == 0
            out = fastattn.attention(q, k, v, key_padding_mask=mask, causal=causal,
                                     backend=backend)
            expected = reference.attention(q, k, v, key_padding_mask=value.clone(), causal=causal)
            torch.testing.assert_close(out, expected.to(out.dtype), rtol=1e-5, atol=1e-5)
