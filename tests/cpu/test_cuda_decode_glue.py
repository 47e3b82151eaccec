"""The cuda attention backend's host side around its fused decode kernels, on CPU: which calls take
them (the rule agrees with csrc/decode_attention.h, compiled for the host), what the binding is
handed (16-byte aligned operands and strides, a contiguous mask: an unaligned view must be copied,
not passed), and the backward of a decoding call, which recomputes the probabilities because the
fused forward leaves its saved buffer unwritten. fastattn._C is replaced by a stand-in that checks
the binding's requirements and computes with fastattn.reference (the kernels themselves: the
emulator test and the gpu tier)."""

import pytest
import torch

from fastattn import _extension, reference
from fastattn.backends import cuda_attention
from host_cxx import build_cuda_driver, run_driver

SUPPORTS_DRIVER = r"""
#include <cstdio>

#include "decode_attention.h"

// Reads "head_dim element_bytes" pairs, prints decode_attention_supports of each (0 or 1).
int main() {
  long long head_dim = 0;
  int bytes = 0;
  while (std::scanf("%lld %d", &head_dim, &bytes) == 2) {
    std::printf("%d\n", fastattn::decode_attention_supports(head_dim, bytes) ? 1 : 0);
  }
  return 0;
}
"""
DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def test_rule_agrees_with_the_kernels(tmp_path_factory):
    """takes_fused_decode (Python) sends a head dim to the kernels exactly when
    decode_attention_supports (C++, what the binding checks) accepts it."""
    binary = build_cuda_driver(tmp_path_factory, "decode_supports", SUPPORTS_DRIVER)
    pairs = [(d, dtype) for dtype in DTYPES for d in range(1, 300)]
    answers = run_driver(binary, "".join(f"{d} {dtype.itemsize}\n" for d, dtype in pairs)).split()
    for (head_dim, dtype), answer in zip(pairs, answers):
        q = torch.empty(1, 1, 1, head_dim, dtype=dtype)
        assert cuda_attention.takes_fused_decode(q, None, 0.0) == (answer == "1"), (head_dim, dtype)


def test_which_calls_take_the_fused_kernels():
    q = torch.empty(2, 4, 16, 64, dtype=torch.float16)
    assert cuda_attention.takes_fused_decode(q, None, 0.0)
    assert not cuda_attention.takes_fused_decode(q, None, 0.1)  # dropout: Megatron-style path
    assert not cuda_attention.takes_fused_decode(torch.empty(2, 4, 17, 64).half(), None, 0.0)
    assert not cuda_attention.takes_fused_decode(q, torch.zeros(3, dtype=torch.int32), 0.0)
    assert not cuda_attention.takes_fused_decode(torch.empty(1, 1, 1, 256), None, 0.0)  # fp32


def _aligned(t):
    size = t.element_size()
    return (t.data_ptr() % 16 == 0 and t.stride(-1) == 1
            and all(s * size % 16 == 0 for s in t.stride()[:-1]))


class StandIn:
    """fastattn._C for CPU tensors: the binding's checks, fastattn.reference's numbers."""

    def __init__(self):
        self.decode_calls, self.softmax_calls = [], 0

    def decode_attention_fwd(self, q, k, v, key_padding_mask, out, causal, scale):
        for name, t in (("q", q), ("k", k), ("v", v), ("out", out)):
            assert _aligned(t), f"{name} handed to the kernels unaligned: strides {t.stride()}"
        assert key_padding_mask is None or key_padding_mask.stride(1) == 1
        self.decode_calls.append(q.shape)
        self.decode_pointers = [t.data_ptr() for t in (q, k, v)]
        out.copy_(reference.attention(q, k, v, causal=causal, key_padding_mask=key_padding_mask,
                                      scale=scale, upcast=False))
        return 1

    def attention_softmax_fwd(self, scores, mask, cu_q, cu_k, probs, dropped, rows_per_batch,
                              queries, causal, scale, dropout_p, dropout_scale, seed):
        self.softmax_calls += 1
        shaped = scores.view(-1, rows_per_batch // queries, queries, scores.shape[-1])
        probs.view_as(shaped).copy_(reference.masked_softmax(
            shaped, key_padding_mask=mask, causal=causal, scale=scale, upcast=False))

    def attention_softmax_bwd(self, grad, probs, grad_scores, dropped, scale, dropout_p,
                              dropout_scale, seed):
        grad_scores.copy_(scale * probs * (grad - (grad * probs).sum(-1, keepdim=True)))


@pytest.fixture
def stand_in(monkeypatch):
    kernels = StandIn()
    monkeypatch.setattr(_extension, "require", lambda: kernels)
    return kernels


def _unaligned_views(shape, dtype, count):
    """`count` tensors of `shape` one element past 16-byte alignment, in one buffer."""
    numel = torch.Size(shape).numel()
    flat = torch.randn(count * numel + 1).to(dtype)
    return [flat[1 + i * numel:1 + (i + 1) * numel].view(shape) for i in range(count)]


@pytest.mark.parametrize("element", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_unaligned_views_are_copied_before_the_kernels(stand_in, element):
    q, k, v = _unaligned_views((2, 4, 1, 64), element, 3)
    assert not _aligned(q)
    mask = torch.ones(2, 3, dtype=torch.bool)[:, ::3]  # a strided [2, 1] mask
    out, saved = cuda_attention.attention_fwd(q, k, v, mask, None, None, 1, 1, True, 0.125, 0.0,
                                              None)
    assert stand_in.decode_calls == [q.shape] and stand_in.softmax_calls == 0
    assert saved.shape == (2, 4, 1, 1)  # P's shape, as the fake function says (unwritten)
    torch.testing.assert_close(out, reference.attention(q, k, v, causal=True,
                                                        key_padding_mask=mask, scale=0.125,
                                                        upcast=False))


# (shape, strides, storage offset) in bfloat16 elements: each with one fault the kernels' 16-byte
# vectors cannot take, the rest aligned.
ALIGNMENT_FAULTS = {
    "address 8 bytes off": ((2, 4, 2, 64), (512, 128, 64, 1), 4),
    "batch stride": ((2, 4, 2, 64), (516, 128, 64, 1), 0),
    "head stride": ((2, 4, 2, 64), (528, 132, 64, 1), 0),
    "sequence stride": ((2, 4, 2, 64), (544, 136, 68, 1), 0),
    "head dim stride": ((2, 4, 2, 64), (1024, 256, 128, 2), 0),
}


@pytest.mark.parametrize("fault", list(ALIGNMENT_FAULTS))
def test_each_alignment_fault_is_copied_and_aligned_operands_are_not(stand_in, fault):
    shape, strides, offset = ALIGNMENT_FAULTS[fault]
    buffer = torch.randn(4096, dtype=torch.bfloat16)
    q = buffer.as_strided(shape, strides, offset)
    k, v = (torch.randn(2, 2, 5, 64, dtype=torch.bfloat16) for _ in range(2))
    assert not _aligned(q) and _aligned(k)
    out, _saved = cuda_attention.attention_fwd(q, k, v, None, None, None, 2, 5, False, 0.125, 0.0,
                                               None)
    q_passed, k_passed, v_passed = stand_in.decode_pointers
    assert q_passed != q.data_ptr() and (k_passed, v_passed) == (k.data_ptr(), v.data_ptr())
    torch.testing.assert_close(out, reference.attention(q, k, v, scale=0.125, upcast=False))


def test_backward_of_a_decoding_call_recomputes_the_probabilities(stand_in):
    """The fused forward left its saved P unwritten; the backward computes P again
    (Megatron-style forward), and the gradients are the reference's."""
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(2, 4, 3, 32, generator=generator, dtype=torch.float64)
    k, v = (torch.randn(2, 2, 9, 32, generator=generator, dtype=torch.float64) for _ in range(2))
    mask = torch.rand(2, 9, generator=generator) > 0.3
    mask[:, -1] = True
    out, saved = cuda_attention.attention_fwd(q, k, v, mask, None, None, 3, 9, True, 0.2, 0.0,
                                              None)
    assert stand_in.decode_calls and stand_in.softmax_calls == 0
    saved.fill_(float("nan"))  # what the backward must not read
    dout = torch.randn(out.shape, generator=generator, dtype=torch.float64)
    grads = cuda_attention.attention_bwd(dout, q, k, v, out, saved, mask, None, None, 3, 9, True,
                                         0.2, 0.0, None)
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    expected = reference.attention(*leaves, causal=True, key_padding_mask=mask, scale=0.2)
    expected.backward(dout)
    assert stand_in.softmax_calls == 1
    for name, got, leaf in zip("qkv", grads, leaves):
        torch.testing.assert_close(got, leaf.grad, msg=f"d{name}")
