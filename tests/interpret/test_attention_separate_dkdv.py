"""float32 dK/dV without dropout under 3-pass TF32 dots (head dims 80-256): dV and dK come from a
launch each (the dK/dV kernel's WANT_DK, WANT_DV; kernels.attention_settings.dkdv_separate_dv),
since both float32 accumulators at once spilled registers. Which launches a backward makes, and
that the gradients still meet the numerics rule against fastattn.reference (masked and causal,
GQA, odd lengths), under the interpreter with the sm_80 and the sm_90 tiles."""

import pytest
import torch
from triton.runtime.interpreter import InterpretedFunction

import attn_cases
import fastattn

DKDV_KERNEL = "attention_bwd_dkdv_kernel"


@pytest.fixture(params=["80", "90"], ids=["sm80-tiles", "sm90-tiles"])
def dkdv_launches(request, monkeypatch):
    """The (WANT_DK, WANT_DV) of every dK/dV kernel launch, in order."""
    monkeypatch.setenv("FASTATTN_INTERPRET_ARCH", request.param)
    launches, real_run = [], InterpretedFunction.run

    def recording_run(self, *args, **kwargs):
        if self.fn.__name__ == DKDV_KERNEL:
            launches.append((kwargs["WANT_DK"], kwargs["WANT_DV"]))
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(InterpretedFunction, "run", recording_run)
    return launches


@pytest.mark.parametrize("head_dim", [80, 128, 256])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_float32_gradients_from_a_launch_each(dkdv_launches, head_dim, causal):
    q, k, v = attn_cases.make_qkv(2, 4, 2, 23, 41, head_dim, torch.float32, "cpu", seed=head_dim)
    mask = attn_cases.key_padding_mask("mixed", 2, 41, "cpu")
    attn_cases.check_dense("triton", q, k, v, causal=causal, mask=mask)
    assert dkdv_launches == [(False, True), (True, False)]  # dV, then dK


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_float32_varlen_gradients_from_a_launch_each(dkdv_launches, causal):
    attn_cases.check_varlen("triton", [5, 0, 19], [9, 0, 12], 4, 2, 96, torch.float32, "cpu",
                            causal)
    assert dkdv_launches == [(False, True), (True, False)]


@pytest.mark.parametrize("case", ["float16", "float32 with dropout", "float32, TF32 allowed"])
def test_one_launch_for_both_elsewhere(dkdv_launches, case):
    """16-bit tiles, the dropout tiles (still switched off on GPUs) and 1-pass TF32 dots keep both
    accumulators in one launch."""
    dtype = torch.float16 if case == "float16" else torch.float32
    q, k, v = (t.requires_grad_() for t in attn_cases.make_qkv(1, 2, 2, 9, 17, 128, dtype, "cpu"))
    dropout_p = 0.2 if "dropout" in case else 0.0
    if "TF32" in case:
        with attn_cases.tf32_allowed():
            _attention_backward(q, k, v, dropout_p)
    else:
        _attention_backward(q, k, v, dropout_p)
    assert dkdv_launches == [(True, True)]


def _attention_backward(q, k, v, dropout_p):
    fastattn.attention(q, k, v, dropout_p=dropout_p, backend="triton").sum().backward()
