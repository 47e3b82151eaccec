"""The cuda attention backend at the sizes where its softmax kernel changes path: one key, an odd
warp-row bucket, a row past the warp path (the block path, where the backward draws the dropout
mask twice), against fastattn.reference, with padding and dropout; and against the other backends."""

import pytest
import torch

import attn_cases
import fastattn
from numerics import max_abs_diff

BACKEND = "cuda"


pytestmark = pytest.mark.usefixtures("cuda_backend")


@pytest.mark.parametrize("keys", [1, 17, 2049, 4097])
def test_row_length_paths(device, dtype, keys):
    # 17 queries: up to 16 (decoding) the fused decode kernels take the call instead
    # (tests/gpu/test_cuda_decode_attention_gpu.py).
    q, k, v = attn_cases.make_qkv(2, 2, 1, 17, keys, 64, dtype, device, seed=keys)
    mask = attn_cases.key_padding_mask("mixed", 2, keys, device)
    attn_cases.check_dense(BACKEND, q, k, v, causal=True, mask=mask)


@pytest.mark.parametrize("keys", [17, 4097])
def test_row_length_paths_with_dropout(device, dtype, keys):
    q, k, v = attn_cases.make_qkv(2, 2, 2, 3, keys, 32, dtype, device, seed=keys)
    mask = attn_cases.key_padding_mask("mixed", 2, keys, device)
    attn_cases.check_dropout_against_reference(BACKEND, q, k, v, causal=False, mask=mask)


def test_backends_agree_on_bert_shape(device, dtype):
    q, k, v = attn_cases.make_qkv(4, 12, 12, 128, 128, 64, dtype, device, seed=9, layout="bshd")
    mask = attn_cases.key_padding_mask("mixed", 4, 128, device)
    outs = {name: fastattn.attention(q, k, v, key_padding_mask=mask, backend=name)
            for name in ("torch", "cuda")}
    tolerance = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}[dtype]
    assert max_abs_diff(outs["cuda"], outs["torch"]) <= tolerance
