"""The cuda backend's fused decode kernels (csrc/decode_attention.h) on the chip: calls of up to 16
queries without dropout take them (fastattn/backends/cuda_attention.takes_fused_decode), against
fastattn.reference in every dtype. One split (short caches) and many (long ones, the combine
kernel), MQA/GQA, causal with several queries, masks with holes and empty rows, a static cache's
strided buffer, views at unaligned addresses, and the backward of a decoding call (recomputed
through the Megatron-style path: the fused forward leaves P unwritten). The CPU tier runs the same kernels under
an emulator (tests/cpu/test_cuda_decode_attention_host.py); this is where they meet the hardware."""

import pytest
import torch

import attn_cases
import fastattn
from fastattn import reference
from fastattn.backends import cuda_attention
from numerics import assert_numerics

BACKEND = "cuda"


pytestmark = pytest.mark.usefixtures("cuda_backend")


def _check_forward(q, k, v, causal=False, mask=None):
    out = fastattn.attention(q, k, v, causal=causal, key_padding_mask=mask, backend=BACKEND)
    ref = reference.attention(q, k, v, causal=causal, key_padding_mask=mask)
    eager = reference.attention(q, k, v, causal=causal, key_padding_mask=mask, upcast=False)
    assert_numerics("fused decode", out, ref, eager)
    return out


# (B, H, Hkv, Sq, Sk, D, causal): short and long caches, MHA/GQA/MQA, one and several queries.
SHAPES = [
    (1, 12, 12, 1, 37, 64, False),       # GPT-2 small, early in generation: one split
    (1, 32, 32, 1, 4096, 128, False),    # the issue's decode case: many splits
    (16, 12, 12, 1, 1000, 64, True),
    (2, 8, 2, 1, 2049, 128, False),      # GQA (the op packs the group's heads as query rows)
    (2, 12, 1, 1, 700, 64, False),       # MQA, 12 rows a KV head: three row groups
    (2, 4, 4, 5, 301, 80, True),         # several queries (speculative decoding), head dim 80
    (1, 2, 2, 16, 16, 256, True),        # the largest query count, head dim 256
    (3, 4, 2, 3, 1, 32, False),          # one key
]


@pytest.mark.parametrize("shape", SHAPES,
                         ids=lambda s: "x".join(map(str, s[:6])) + ("c" if s[6] else ""))
def test_matches_reference(device, dtype, shape):
    batch, heads, kv_heads, queries, keys, head_dim, causal = shape
    if dtype == torch.float32 and head_dim * 4 > 512:
        pytest.skip("float32 head dim 256 is beyond the fused kernels (Megatron path): covered "
                    "by the attention suite")
    q, k, v = attn_cases.make_qkv(batch, heads, kv_heads, queries, keys, head_dim, dtype, device,
                                  seed=keys)
    assert cuda_attention.takes_fused_decode(q, None, 0.0)
    _check_forward(q, k, v, causal=causal)


@pytest.mark.parametrize("pattern", ["mixed", "empty_row"])
def test_padding_masks(device, dtype, pattern):
    q, k, v = attn_cases.make_qkv(4, 8, 2, 1, 1500, 64, dtype, device, seed=3)
    mask = attn_cases.key_padding_mask(pattern, 4, 1500, device)
    out = _check_forward(q, k, v, mask=mask)
    if pattern == "empty_row":
        assert (out[-1] == 0).all()


def test_hidden_keys_never_reach_the_output(device, dtype):
    """The kernels load a hidden key's K and V without waiting for the mask, then leave them out:
    NaN there (what an unwritten cache may hold) must not reach the output."""
    q, k, v = attn_cases.make_qkv(2, 8, 8, 1, 700, 64, dtype, device, seed=11)
    mask = attn_cases.key_padding_mask("mixed", 2, 700, device)
    hidden = ~mask[:, None, :, None]
    out = fastattn.attention(q, k.masked_fill(hidden, float("nan")),
                             v.masked_fill(hidden, float("nan")), key_padding_mask=mask,
                             backend=BACKEND)
    ref = reference.attention(q, k, v, key_padding_mask=mask)
    eager = reference.attention(q, k, v, key_padding_mask=mask, upcast=False)
    assert_numerics("fused decode, NaN at hidden keys", out, ref, eager)


def test_static_cache_buffer_and_unaligned_views(device, dtype):
    """k and v as the first Sk keys of a larger [B, Hkv, capacity, D] buffer (a static cache), its
    tail hidden by the mask; then q, k, v as views one element off 16-byte alignment (the backend
    copies those)."""
    q, k_buffer, v_buffer = attn_cases.make_qkv(2, 4, 4, 1, 512, 64, dtype, device, seed=5)
    k, v = k_buffer[:, :, :300], v_buffer[:, :, :300]
    mask = torch.ones(2, 300, dtype=torch.bool, device=device)
    mask[:, 250:] = False
    _check_forward(q, k, v, mask=mask)
    flat = torch.randn(3 * q.numel() + 1, device=device).to(dtype)
    q2, k2, v2 = (flat[1 + i * q.numel():1 + (i + 1) * q.numel()].view(q.shape) for i in range(3))
    _check_forward(q2, k2, v2, causal=True)


def test_layout_of_a_model(device, dtype):
    """q, k, v as transposed views of [B, S, H, D] projections (not contiguous), as models give."""
    q, k, v = attn_cases.make_qkv(2, 12, 12, 1, 257, 64, dtype, device, seed=8, layout="bshd")
    _check_forward(q, k, v, causal=True)


def test_backward_of_a_decoding_call(device, dtype):
    """Gradients through a fused decode call (its backward recomputes P) match the reference."""
    q, k, v = attn_cases.make_qkv(2, 4, 2, 3, 129, 64, dtype, device, seed=4)
    mask = attn_cases.key_padding_mask("mixed", 2, 129, device)
    attn_cases.check_dense(BACKEND, q, k, v, causal=True, mask=mask)


def test_long_caches_are_split(device):
    """The split rule gives several key splits for one long sequence (the combine kernel runs) and
    one for a short cache."""
    from fastattn import _extension

    kernels = _extension.require()
    q, k, v = attn_cases.make_qkv(1, 32, 32, 1, 4096, 128, torch.bfloat16, device)
    assert kernels.decode_attention_fwd(q, k, v, None, torch.empty_like(q), False, 0.1) > 1
    q, k, v = attn_cases.make_qkv(1, 12, 12, 1, 40, 64, torch.bfloat16, device)
    assert kernels.decode_attention_fwd(q, k, v, None, torch.empty_like(q), False, 0.1) == 1


def test_agrees_with_triton_at_the_issue_shape(device):
    q, k, v = attn_cases.make_qkv(16, 32, 32, 1, 4096, 128, torch.bfloat16, device, seed=1)
    if not fastattn.available_backends()["triton"]["available"]:
        pytest.skip("triton unavailable")
    cuda = fastattn.attention(q, k, v, causal=True, backend="cuda")
    triton = fastattn.attention(q, k, v, causal=True, backend="triton")
    assert (cuda.float() - triton.float()).abs().max().item() < 2e-2
