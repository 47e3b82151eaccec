"""The attention backward with dQ accumulated atomically by the dK/dV kernel (ATOMIC_DQ), forced on
for every tile configuration, interpreted on CPU: both kernel forms (the sm_80 [queries, keys]
tiles and the sm_90 transposed ones) against fastattn.reference, with odd sizes, masks with holes,
rows that see no key, varlen, GQA and dropout. Which configurations take the form on a GPU is
kernels.attention_settings' table; these tests check the form's numbers wherever it could run."""

import pytest
import torch

import attn_cases
import fastattn
from fastattn.backends import triton_attention
from fastattn.kernels import attention_settings as settings

from attn_suite import (  # noqa: F401  (the suite's tests, run here with the atomic form forced)
    _skip_backends_without_attention,
    test_dropout_matches_reference,
    test_key_padding_mask,
    test_matches_reference,
    test_no_keys_at_all,
    test_varlen,
)


@pytest.fixture(autouse=True, params=["80", "90"], ids=["sm80-tiles", "sm90-tiles"])
def _atomic_dq_everywhere(request, monkeypatch):
    """Every call takes the atomic form, with the dK/dV kernel's own tiles of its configuration."""
    monkeypatch.setenv("FASTATTN_INTERPRET_ARCH", request.param)
    monkeypatch.setattr(settings, "backward_atomic_dq_tiles",
                        lambda head_dim, arch, is_fp32, dropout=False, causal=False:
                        settings.backward_dkdv_tiles(head_dim, arch, is_fp32, dropout))


def _backward_launches(count_launches, dtype, deterministic):
    dkdv = count_launches(triton_attention, "attention_bwd_dkdv_kernel")
    dq = count_launches(triton_attention, "attention_bwd_dq_kernel")
    q, k, v = attn_cases.make_qkv(2, 4, 2, 37, 45, 32, dtype, torch.device("cpu"), seed=3)
    mask = attn_cases.key_padding_mask("mixed", 2, 45, torch.device("cpu"))
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(deterministic)
    try:
        leaves = [t.detach().requires_grad_() for t in (q, k, v)]
        fastattn.attention(*leaves, causal=True, key_padding_mask=mask,
                           backend="triton").square().sum().backward()
    finally:
        torch.use_deterministic_algorithms(previous)
    return len(dkdv), len(dq), [t.grad for t in leaves]


def test_the_atomic_form_launches_no_dq_kernel(dtype, count_launches):
    dkdv, dq, _ = _backward_launches(count_launches, dtype, deterministic=False)
    assert (dkdv, dq) == (1, 0)


def test_deterministic_algorithms_keep_the_dq_kernel(dtype, count_launches):
    """torch.use_deterministic_algorithms(True): the run-to-run order of atomic adds would change
    dQ's rounding, so the dQ kernel runs; both forms give the same gradients within rounding."""
    dkdv, dq, grads = _backward_launches(count_launches, dtype, deterministic=True)
    assert (dkdv, dq) == (1, 1)
    _, _, atomic_grads = _backward_launches(count_launches, dtype, deterministic=False)
    tolerance = 1e-5 if dtype == torch.float32 else 2e-3
    for name, exact, atomic in zip("qkv", grads, atomic_grads):
        torch.testing.assert_close(atomic, exact, atol=tolerance, rtol=tolerance, msg=name)

