"""fastattn.masked_softmax as an API: each kind of bad input raises a named error, the custom ops
pass opcheck, torch.compile(fullgraph=True) traces through them, and the reference's semantics
(bottom-right causal, padding mask, zero rows) hold on hand-written cases."""

import pytest
import torch

import fastattn
from fastattn import reference
from numerics import assert_grad_numerics, assert_numerics


def call(**overrides):
    args = {"scores": torch.randn(2, 3, 4, 5), "key_padding_mask": torch.ones(2, 5, dtype=torch.bool)}
    args.update(overrides)
    return fastattn.masked_softmax(args.pop("scores"), **args)


CASES = [
    ("scores not a tensor", dict(scores=[[1.0]]), TypeError, "scores must be a torch.Tensor"),
    ("integer scores", dict(scores=torch.ones(2, 3, 4, 5, dtype=torch.int32)), TypeError, "scores must be float32"),
    ("complex scores", dict(scores=torch.ones(2, 3, 4, 5, dtype=torch.complex64)), TypeError, "got complex64"),
    ("3D scores", dict(scores=torch.randn(3, 4, 5)), ValueError, r"scores must be 4D \[batch, heads, queries, keys\], got shape \[3, 4, 5\]"),
    ("mask not a tensor", dict(key_padding_mask=[[True] * 5] * 2), TypeError, "key_padding_mask must be a torch.Tensor"),
    ("integer mask", dict(key_padding_mask=torch.ones(2, 5, dtype=torch.int64)), TypeError, "key_padding_mask must be a bool tensor"),
    ("float mask", dict(key_padding_mask=torch.zeros(2, 5)), TypeError, "key_padding_mask must be a bool tensor"),
    ("mask shape", dict(key_padding_mask=torch.ones(2, 4, dtype=torch.bool)), ValueError, r"key_padding_mask must have shape \[2, 5\], got \[2, 4\]"),
    ("mask 4D", dict(key_padding_mask=torch.ones(2, 1, 1, 5, dtype=torch.bool)), ValueError, r"key_padding_mask must have shape \[2, 5\]"),
    ("causal not bool", dict(causal=1), TypeError, "causal must be True or False"),
    ("scale string", dict(scale="0.1"), TypeError, "scale must be a real number"),
    ("scale nan", dict(scale=float("nan")), ValueError, "scale must be finite"),
    ("scale inf", dict(scale=float("inf")), ValueError, "scale must be finite"),
    ("backend unknown", dict(backend="fast"), ValueError, "unknown backend 'fast'"),
]


@pytest.mark.parametrize("overrides,error,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_named_error(overrides, error, message):
    with pytest.raises(error, match=message):
        call(**overrides)


def test_mask_on_another_device_is_named():
    with pytest.raises(ValueError, match="key_padding_mask is on meta but scores is on cpu"):
        call(key_padding_mask=torch.ones(2, 5, dtype=torch.bool, device="meta"))


def test_fused_backend_on_cpu_tensors_says_why():
    with pytest.raises(fastattn.BackendUnavailableError, match="backend 'cuda'"):
        call(backend="cuda")


def test_reference_semantics_on_a_hand_written_case():
    """Query i of Sq=2 over Sk=3 keys sees keys j <= i + 1; key 1 is padding."""
    scores = torch.zeros(1, 1, 2, 3, dtype=torch.float64)
    mask = torch.tensor([[True, False, True]])
    out = reference.masked_softmax(scores, mask, causal=True)
    expected = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5]], dtype=torch.float64)
    assert torch.equal(out[0, 0], expected)
    nothing_visible = reference.masked_softmax(scores, torch.zeros(1, 3, dtype=torch.bool))
    assert torch.equal(nothing_visible, torch.zeros_like(scores))


@pytest.mark.parametrize("with_mask,causal", [(False, False), (True, False), (True, True)])
def test_opcheck_forward_op(with_mask, causal):
    scores = torch.randn(2, 3, 4, 6, requires_grad=True)
    mask = torch.tensor([[True] * 6, [True, False, True, True, False, False]]) if with_mask else None
    torch.library.opcheck(torch.ops.fastattn.masked_softmax_fwd.default,
                          (scores, mask, causal, 0.5, "torch"))


def test_opcheck_backward_op():
    out = torch.softmax(torch.randn(2, 3, 4, 6), dim=-1)
    torch.library.opcheck(torch.ops.fastattn.masked_softmax_bwd.default,
                          (torch.randn_like(out), out, 0.5, "torch"))


def attention_probs(scores, mask):
    """A BERT-style use: scaled, padding-masked probabilities, then a weighted sum."""
    probs = fastattn.masked_softmax(scores, key_padding_mask=mask, causal=True, scale=0.25)
    return probs * 2 + 1


@pytest.mark.parametrize("compiler", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph_forward_and_backward(compiler):
    torch._dynamo.reset()
    compiled = torch.compile(attention_probs, fullgraph=True, backend=compiler)
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(2, 2, 5, 7, generator=generator).requires_grad_()
    mask = torch.rand(2, 7, generator=generator) < 0.7
    out = compiled(scores, mask)
    ref_scores = scores.detach().double().requires_grad_()
    eager_scores = scores.detach().clone().requires_grad_()
    ref = reference.masked_softmax(ref_scores, mask, True, 0.25, upcast=True) * 2 + 1
    eager = reference.masked_softmax(eager_scores, mask, True, 0.25, upcast=False) * 2 + 1
    assert_numerics("out", out, ref, eager)
    grad = torch.randn_like(out)
    (got,) = torch.autograd.grad(out, scores, grad)
    (ref_grad,) = torch.autograd.grad(ref, ref_scores, grad.double())
    (eager_grad,) = torch.autograd.grad(eager, eager_scores, grad)
    assert_grad_numerics("dscores", got, ref_grad, eager_grad)
