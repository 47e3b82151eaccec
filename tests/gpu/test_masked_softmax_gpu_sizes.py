"""Masked softmax at real sizes and at every CUDA row-length bucket edge, the backends against each
other, and the automatic choice."""

import pytest
import torch

import fastattn
import softmax_cases
from numerics import max_abs_diff

# Each side of every warp-row bucket (32 ... 2048) and of the block path; Triton's register limit
# (8192) and its long-row kernel; vector-friendly and odd lengths.
KEY_LENGTHS = [1, 17, 32, 33, 64, 100, 128, 256, 500, 512, 1000, 1024, 2047, 2048, 2049, 3000,
               4096, 4097, 8192, 8193, 16385]


@pytest.mark.parametrize("keys", KEY_LENGTHS)
def test_every_row_length_path(backend, device, dtype, keys):
    softmax_cases.check_case(backend, device, dtype, (2, 3, 5, keys), mask_pattern="holes",
                             causal=True)


def test_bert_size_with_right_padding(backend, device, dtype):
    softmax_cases.check_case(backend, device, dtype, (16, 12, 512, 512), mask_pattern="right",
                             scale=0.125)


def test_gpt2_decode_shape(backend, device, dtype):
    """One new query over a long KV cache, causal bottom-right: every key visible."""
    softmax_cases.check_case(backend, device, dtype, (4, 12, 1, 3001), causal=True)


def test_misaligned_scores_take_the_scalar_path(backend, device, dtype):
    """An offset view: rows not 16-byte aligned, so the CUDA kernels must not use vector loads."""
    base = softmax_cases.make_scores((2, 3, 4, 513), dtype, device)
    scores = base[..., 1:]
    assert scores.data_ptr() % 16 != 0
    mask = softmax_cases.make_mask(2, 512, "holes", device)
    softmax_cases.check_against_reference(backend, scores, mask, causal=False, scale=0.5)


@pytest.mark.parametrize("keys", [77, 512, 4097])
def test_fused_backends_agree(device, dtype, keys):
    status = fastattn.available_backends()
    missing = [name for name in ("triton", "cuda") if not status[name]["available"]]
    if missing:
        pytest.skip(f"needs both fused backends, missing {missing}: {status[missing[0]]['detail']}")
    scores = softmax_cases.make_scores((3, 4, 9, keys), dtype, device).requires_grad_()
    mask = softmax_cases.make_mask(3, keys, "holes", device)
    dy = torch.randn_like(scores)
    results = {}
    for name in ("triton", "cuda", "torch"):
        out = fastattn.masked_softmax(scores, key_padding_mask=mask, causal=True, scale=0.3,
                                      backend=name)
        results[name] = (out, torch.autograd.grad(out, scores, dy)[0])
    tolerance = {torch.float32: 1e-6, torch.float16: 1e-3, torch.bfloat16: 8e-3}[dtype]
    for name in ("cuda", "torch"):
        assert max_abs_diff(results[name][0], results["triton"][0]) <= tolerance, name
        assert max_abs_diff(results[name][1], results["triton"][1]) <= 4 * tolerance, name


def test_automatic_choice_on_gpu_is_a_fused_backend(device):
    from fastattn import _dispatch
    chosen = _dispatch.resolve_backend("masked_softmax", device)
    assert chosen in ("triton", "cuda"), chosen
