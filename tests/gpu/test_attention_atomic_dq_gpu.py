"""The attention backward's atomic-dQ form on a GPU (kernels.attention_bwd, ATOMIC_DQ: the dK/dV
kernel adds dQ with float32 atomics and the dQ kernel is not launched), where the settings choose it
(sm_90 tables, 16-bit, kernels.attention_settings._BACKWARD_ATOMIC_DQ_SM90): at real sizes against
the reference, and against the two-kernel form that torch.use_deterministic_algorithms keeps,
which repeats bit for bit."""

import pytest
import torch

import attn_cases
import fastattn
from fastattn.backends import triton_attention
from fastattn.backends._device import tile_arch
from fastattn.kernels import attention_settings as settings

HALF_DTYPES = pytest.mark.parametrize("dtype16", [torch.float16, torch.bfloat16],
                                      ids=["fp16", "bf16"])


@pytest.fixture
def dq_kernel_launches(monkeypatch):
    """A list that gets one entry per launch of the dQ kernel until the test ends."""
    kernel, launches = triton_attention.attention_bwd_dq_kernel, []

    class Counted:
        def __getitem__(self, grid):
            launches.append(grid)
            return kernel[grid]

    monkeypatch.setattr(triton_attention, "attention_bwd_dq_kernel", Counted())
    return launches


def _atomic_form_expected(head_dim, dtype, causal):
    arch = tile_arch(torch.device("cuda"))
    return settings.backward_atomic_dq_tiles(head_dim, arch, dtype == torch.float32, False,
                                             causal) is not None


def _gradients(q, k, v, mask, causal, deterministic):
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    try:
        leaves = [t.detach().requires_grad_() for t in (q, k, v)]
        out = fastattn.attention(*leaves, causal=causal, key_padding_mask=mask, backend="triton")
        generator = torch.Generator(out.device).manual_seed(5)
        out.backward(torch.randn(out.shape, generator=generator, device=out.device,
                                 dtype=out.dtype))
    finally:
        torch.use_deterministic_algorithms(previous)
    return [t.grad for t in leaves]


@HALF_DTYPES
@pytest.mark.parametrize("head_dim", [64, 128])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("masked", [False, True], ids=["dense", "mask"])
def test_matches_reference_where_chosen(dtype16, head_dim, causal, masked, dq_kernel_launches):
    """GQA, odd lengths, left padding and holes; the dQ kernel runs only where the atomic form is
    not chosen (an sm_80-table GPU runs two kernels everywhere: checked all the same)."""
    device = torch.device("cuda")
    q, k, v = attn_cases.make_qkv(2, 8, 4, 1000, 1037, head_dim, dtype16, device, seed=4)
    mask = attn_cases.key_padding_mask("mixed", 2, 1037, device) if masked else None
    attn_cases.check_dense("triton", q, k, v, causal=causal, mask=mask)
    assert bool(dq_kernel_launches) != _atomic_form_expected(head_dim, dtype16, causal)


@HALF_DTYPES
@pytest.mark.parametrize("head_dim", [64, 128])
def test_varlen_matches_reference(dtype16, head_dim):
    attn_cases.check_varlen("triton", [300, 0, 1031, 77], [300, 0, 1031, 77], 8, 2, head_dim,
                            dtype16, torch.device("cuda"), causal=False)


@HALF_DTYPES
@pytest.mark.parametrize("head_dim", [64, 128])
def test_deterministic_algorithms_repeat_and_agree(dtype16, head_dim, dq_kernel_launches):
    """Under torch.use_deterministic_algorithms the dQ kernel runs and two backwards give the same
    bits; the atomic form agrees with it up to the rounding of a different order of float32 adds."""
    device = torch.device("cuda")
    q, k, v = attn_cases.make_qkv(4, 16, 16, 2048, 2048, head_dim, dtype16, device, seed=9)
    mask = attn_cases.key_padding_mask("mixed", 4, 2048, device)
    first = _gradients(q, k, v, mask, False, deterministic=True)
    assert dq_kernel_launches, "deterministic mode must run the dQ kernel"
    second = _gradients(q, k, v, mask, False, deterministic=True)
    for name, a, b in zip("qkv", first, second):
        assert torch.equal(a, b), f"d{name} differs between two deterministic backwards"
    atomic = _gradients(q, k, v, mask, False, deterministic=False)
    for name, exact, other in zip("qkv", first, atomic):
        scale = exact.abs().max().item()
        torch.testing.assert_close(other, exact, rtol=2e-2, atol=2e-3 * scale, msg=f"d{name}")
