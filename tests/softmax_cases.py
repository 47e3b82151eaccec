"""Masked softmax checks, written once and run by every tier (cpu, interpret, gpu) on the backends
that tier has. Each check draws fresh random scores from a fixed seed and compares the backend with
fastattn.reference.masked_softmax under the numerics rule, forward and backward."""

import torch

import fastattn
from fastattn import reference
from numerics import assert_grad_numerics, assert_numerics

# [B, H, Sq, Sk]: one element; odd lengths; the warp-row buckets' edges; rows longer than a warp
# (CUDA) and than registers (Triton) hold. Few rows for the long ones: the interpreter is slow.
SHAPES = [(1, 1, 1, 1), (2, 3, 5, 17), (2, 2, 3, 64), (1, 2, 3, 1000), (1, 1, 2, 4097),
          (1, 1, 1, 16385)]
MASK_PATTERNS = ("right", "left", "holes")


def make_scores(shape, dtype, device, seed=0, layout="contiguous"):
    """Random logits spread like attention scores. layout "heads_last" gives [B, Sq, H, Sk]
    transposed to [B, H, Sq, Sk] (rows with gaps); "keys_strided" a last dim that is not contiguous."""
    generator = torch.Generator().manual_seed(seed)
    batch, heads, queries, keys = shape
    if layout == "heads_last":
        scores = torch.randn(batch, queries, heads, keys, generator=generator).transpose(1, 2)
    elif layout == "keys_strided":
        scores = torch.randn(batch, heads, keys, queries, generator=generator).transpose(2, 3)
    else:
        scores = torch.randn(shape, generator=generator)
    return (3 * scores).to(device, dtype)


def make_mask(batch, keys, pattern, device, seed=0):
    """Bool [batch, keys], True = a real token. Batch row 0 is fully visible and, given a second
    row, row 1 fully hidden (its queries see nothing); the rest follow the pattern."""
    generator = torch.Generator().manual_seed(seed + 1)
    lengths = torch.randint(1, keys + 1, (batch,), generator=generator)
    position = torch.arange(keys)[None, :]
    if pattern == "right":
        mask = position < lengths[:, None]
    elif pattern == "left":
        mask = position >= keys - lengths[:, None]
    elif pattern == "holes":
        mask = torch.rand(batch, keys, generator=generator) < 0.6
    else:
        raise ValueError(pattern)
    mask[0] = True
    if batch > 1:
        mask[1] = False
    return mask.to(device)


def check_case(backend, device, dtype, shape, mask_pattern=None, causal=False, scale=0.125,
               seed=0, layout="contiguous"):
    scores = make_scores(shape, dtype, device, seed, layout)
    mask = None if mask_pattern is None else make_mask(shape[0], shape[-1], mask_pattern, device, seed)
    check_against_reference(backend, scores, mask, causal, scale)


def check_against_reference(backend, scores, mask, causal, scale):
    """The output, its exact zeros at hidden keys, and the gradient, against the reference."""
    leaf = scores.detach().requires_grad_()
    out = fastattn.masked_softmax(leaf, key_padding_mask=mask, causal=causal, scale=scale,
                                  backend=backend)
    ref_leaf = scores.detach().double().requires_grad_()
    ref = reference.masked_softmax(ref_leaf, mask, causal, scale, upcast=True)
    eager_leaf = scores.detach().clone().requires_grad_()
    eager = reference.masked_softmax(eager_leaf, mask, causal, scale, upcast=False)
    assert out.dtype == scores.dtype and out.shape == scores.shape
    assert_numerics("y", out, ref, eager)
    hidden = ~reference.visible_keys(scores.shape, mask, causal, scores.device)
    assert not out.detach().masked_fill(~hidden, 0).any(), "non-zero probability at a hidden key"

    generator = torch.Generator().manual_seed(1)
    dy = torch.randn(scores.shape, generator=generator).to(scores.device, scores.dtype)
    (got,) = torch.autograd.grad(out, leaf, dy)
    (ref_grad,) = torch.autograd.grad(ref, ref_leaf, dy.double())
    (eager_grad,) = torch.autograd.grad(eager, eager_leaf, dy)
    assert got.dtype == scores.dtype
    assert_grad_numerics("dscores", got, ref_grad, eager_grad)
    assert not got.masked_fill(~hidden, 0).any(), "non-zero gradient at a hidden key"


def check_fully_hidden_rows(backend, device, dtype):
    """Queries that see no key (all padding, or causal with Sq > Sk) give zeros and zero gradient."""
    shape = (2, 2, 6, 3)  # causal: queries 0..2 see nothing (j <= i - 3)
    scores = make_scores(shape, dtype, device).requires_grad_()
    mask = torch.tensor([[True, False, True], [False, False, False]], device=device)
    out = fastattn.masked_softmax(scores, key_padding_mask=mask, causal=True, backend=backend)
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    assert torch.equal(out[0, :, :3], torch.zeros_like(out[0, :, :3]))
    assert torch.isfinite(out).all()
    out.backward(torch.ones_like(out))
    assert torch.equal(scores.grad[1], torch.zeros_like(scores.grad[1]))
    assert torch.isfinite(scores.grad).all()


def check_empty(backend, device, dtype):
    for shape in ((0, 2, 3, 4), (2, 2, 0, 4), (1, 1, 3, 0)):
        scores = torch.randn(shape, device=device, dtype=dtype, requires_grad=True)
        out = fastattn.masked_softmax(scores, causal=True, backend=backend)
        assert out.shape == scores.shape
        out.sum().backward()
        assert scores.grad.shape == scores.shape
