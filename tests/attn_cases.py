"""Attention checks, written once and run by every tier (cpu, interpret, gpu) on the backends that
tier has. Each check draws fresh random inputs from a fixed seed and compares the backend with
fastattn.reference (forward and the gradients of q, k, v) under the numerics rule."""

import contextlib

import torch

import fastattn
from fastattn import reference
from fastattn._rng import draw_dropout_seed
from numerics import assert_grad_numerics, assert_numerics


def make_qkv(batch, heads, kv_heads, seqlen_q, seqlen_k, head_dim, dtype, device, seed=0,
             layout="bhsd"):
    """q [B, H, Sq, D], k/v [B, Hkv, Sk, D]. layout "bshd" gives the same shapes as transposed
    views of [B, S, H, D] tensors (what a model's projections produce): not contiguous."""
    generator = torch.Generator().manual_seed(seed)

    def draw(h, s):
        if layout == "bshd":
            return torch.randn(batch, s, h, head_dim, generator=generator).to(device, dtype).transpose(1, 2)
        return torch.randn(batch, h, s, head_dim, generator=generator).to(device, dtype)

    return draw(heads, seqlen_q), draw(kv_heads, seqlen_k), draw(kv_heads, seqlen_k)


@contextlib.contextmanager
def tf32_allowed():
    """torch.backends.cuda.matmul.allow_tf32 = True for the block, restored after (monkeypatch
    cannot: the flag is served by the module's __getattr__, not an attribute)."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def key_padding_mask(pattern, batch, seqlen_k, device, seed=0):
    """bool [B, Sk] masks: "mixed" has a right-padded, a left-padded and a holed row (cycling);
    "empty_row" is mixed with its last row all padding (those queries see no key)."""
    generator = torch.Generator().manual_seed(seed)
    mask = torch.ones(batch, seqlen_k, dtype=torch.bool)
    for b in range(batch):
        kind = b % 3
        keep = max(1, seqlen_k * (b + 2) // (batch + 3))
        if kind == 0:
            mask[b, keep:] = False  # right padding
        elif kind == 1:
            mask[b, :seqlen_k - keep] = False  # left padding
        else:
            mask[b] = torch.rand(seqlen_k, generator=generator) < 0.6  # holes
            mask[b, 0] = True
    if pattern == "empty_row":
        mask[-1] = False
    return mask.to(device)


def _leaves(tensors, dtype=None):
    return [t.detach().to(dtype or t.dtype).requires_grad_() for t in tensors]


def compare(run, ref_run, inputs, grad_seed=1):
    """run(q, k, v) (fastattn) against ref_run(q, k, v, upcast) (the reference): outputs, then the
    gradients of q, k, v for a random output gradient."""
    leaves = _leaves(inputs)
    out = run(*leaves)
    ref_leaves = _leaves(inputs, torch.float64)
    eager_leaves = _leaves(inputs)
    ref, eager = ref_run(*ref_leaves, upcast=True), ref_run(*eager_leaves, upcast=False)
    assert out.dtype == inputs[0].dtype
    assert_numerics("out", out, ref, eager)
    generator = torch.Generator().manual_seed(grad_seed)
    dout = torch.randn(out.shape, generator=generator).to(out.device, out.dtype)
    got = torch.autograd.grad(out, leaves, dout)
    ref_grads = torch.autograd.grad(ref, ref_leaves, dout.double())
    eager_grads = torch.autograd.grad(eager, eager_leaves, dout)
    for name, g, r, e, t in zip(("dq", "dk", "dv"), got, ref_grads, eager_grads, inputs):
        assert g.dtype == t.dtype and g.shape == t.shape, name
        assert_grad_numerics(name, g, r, e)


def check_dense(backend, q, k, v, causal=False, mask=None, scale=None):
    def run(q, k, v):
        return fastattn.attention(q, k, v, causal=causal, key_padding_mask=mask, scale=scale,
                                  backend=backend)

    def ref_run(q, k, v, upcast):
        return reference.attention(q, k, v, causal=causal, key_padding_mask=mask, scale=scale,
                                   upcast=upcast)

    compare(run, ref_run, (q, k, v))


def varlen_inputs(lengths_q, lengths_k, heads, kv_heads, head_dim, dtype, device, seed=0):
    generator = torch.Generator().manual_seed(seed)

    def packed(total, h):
        return torch.randn(total, h, head_dim, generator=generator).to(device, dtype)

    def cu(lengths):
        return torch.tensor([0] + list(torch.tensor(lengths).cumsum(0).tolist()),
                            dtype=torch.int32, device=device)

    q, k, v = packed(sum(lengths_q), heads), packed(sum(lengths_k), kv_heads), packed(sum(lengths_k), kv_heads)
    return q, k, v, cu(lengths_q), cu(lengths_k)


def check_varlen(backend, lengths_q, lengths_k, heads, kv_heads, head_dim, dtype, device, causal):
    q, k, v, cu_q, cu_k = varlen_inputs(lengths_q, lengths_k, heads, kv_heads, head_dim, dtype, device)

    def run(q, k, v):
        return fastattn.attention_varlen(q, k, v, cu_q, cu_k, max(lengths_q), max(lengths_k),
                                         causal=causal, backend=backend)

    def ref_run(q, k, v, upcast):
        return reference.attention_varlen(q, k, v, cu_q, cu_k, causal=causal, upcast=upcast)

    compare(run, ref_run, (q, k, v))


def _seeded(call_seed, fn):
    torch.manual_seed(call_seed)
    return fn()


def check_dropout_against_reference(backend, q, k, v, causal, mask, dropout_p=0.3, call_seed=11):
    """Outputs and gradients under dropout equal the reference given the keep mask of the shared
    Philox stream, seeded as the call seeds it (draw_dropout_seed after torch.manual_seed)."""
    batch, heads, seqlen_q, seqlen_k = q.shape[0], q.shape[1], q.shape[2], k.shape[2]
    keep = _seeded(call_seed, lambda: reference.attention_dropout_keep_mask(
        int(draw_dropout_seed(dropout_p)), batch, heads, seqlen_q, seqlen_k, dropout_p, q.device))

    def run(q, k, v):
        return _seeded(call_seed, lambda: fastattn.attention(
            q, k, v, causal=causal, key_padding_mask=mask, dropout_p=dropout_p, backend=backend))

    def ref_run(q, k, v, upcast):
        return reference.attention(q, k, v, causal=causal, key_padding_mask=mask, keep_mask=keep,
                                   dropout_p=dropout_p, upcast=upcast)

    compare(run, ref_run, (q, k, v))


def observed_keep_mask(backend, device, batch, heads, seqlen_q, dropout_p, call_seed):
    """The keep mask a call draws, read off its output: with v the identity (Sk = D keys), out[..., i, j]
    = P_ij * keep_ij / (1 - p), and every P_ij > 0."""
    head_dim = 64
    q, k, _ = make_qkv(batch, heads, heads, seqlen_q, head_dim, head_dim, torch.float32, device, seed=5)
    v = torch.eye(head_dim, device=device).expand(batch, heads, head_dim, head_dim)
    out = _seeded(call_seed, lambda: fastattn.attention(q, k, v, dropout_p=dropout_p, backend=backend))
    return out != 0


def check_dropout_statistics(backend, device, dropout_p=0.2, shape=(2, 4, 256)):
    """Kept fraction within 0.01 of 1 - p over 2*4*256*64 scores; the mask is the reference stream;
    torch.manual_seed repeats it and another seed changes it."""
    batch, heads, seqlen_q = shape
    keep = observed_keep_mask(backend, device, batch, heads, seqlen_q, dropout_p, call_seed=7)
    assert abs(keep.float().mean().item() - (1 - dropout_p)) < 0.01
    expected = _seeded(7, lambda: reference.attention_dropout_keep_mask(
        int(draw_dropout_seed(dropout_p)), batch, heads, seqlen_q, 64, dropout_p, device))
    assert torch.equal(keep, expected), "the keep mask is not reference.attention_dropout_keep_mask"
    assert torch.equal(observed_keep_mask(backend, device, batch, heads, seqlen_q, dropout_p, 7), keep)
    assert not torch.equal(observed_keep_mask(backend, device, batch, heads, seqlen_q, dropout_p, 8), keep)
