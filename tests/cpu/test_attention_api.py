"""attention / attention_varlen / unpad / pad: bad input raises a named error (one case per kind),
the custom ops pass opcheck, torch.compile(fullgraph=True) traces through them, unpad/pad
round-trip, and the choice of backend."""

import functools
import importlib.util

import pytest
import torch

import fastattn
from fastattn import reference
from fastattn._dispatch import resolve_backend, why_backend_cannot_run
from fastattn.ops import attention as attention_op
from fastattn.ops.attention import missing_backends
from numerics import assert_grad_numerics, assert_numerics


def good(**overrides):
    args = {"q": torch.randn(2, 4, 5, 16), "k": torch.randn(2, 2, 6, 16), "v": torch.randn(2, 2, 6, 16)}
    options = {key: overrides.pop(key) for key in ("causal", "key_padding_mask", "scale",
                                                   "dropout_p", "backend") if key in overrides}
    args.update(overrides)
    return args, options


def call(**overrides):
    args, options = good(**overrides)
    return fastattn.attention(args["q"], args["k"], args["v"], **options)


CASES = [
    ("q not a tensor", dict(q=[[1.0]]), TypeError, "q must be a torch.Tensor"),
    ("integer k", dict(k=torch.ones(2, 2, 6, 16, dtype=torch.int64)), TypeError, "k must be float32"),
    ("v dtype differs", dict(v=torch.randn(2, 2, 6, 16).half()), TypeError, "v must have the dtype of q"),
    ("q 3D", dict(q=torch.randn(4, 5, 16)), ValueError, "q must be 4D"),
    ("v shape differs", dict(v=torch.randn(2, 2, 7, 16)), ValueError, r"v must have shape \[2, 2, 6, 16\]"),
    ("head dim differs", dict(k=torch.randn(2, 2, 6, 32), v=torch.randn(2, 2, 6, 32)), ValueError, "k must have q's head dim 16"),
    ("empty head dim", dict(q=torch.randn(2, 4, 5, 0), k=torch.randn(2, 2, 6, 0), v=torch.randn(2, 2, 6, 0)), ValueError, "head dim .* must be at least 1"),
    ("heads not divisible", dict(k=torch.randn(2, 3, 6, 16), v=torch.randn(2, 3, 6, 16)), ValueError, r"k's head count \(3\) must divide q's \(4\)"),
    ("batch differs", dict(k=torch.randn(1, 2, 6, 16), v=torch.randn(1, 2, 6, 16)), ValueError, "k must have q's batch size 2"),
    ("mask not bool", dict(key_padding_mask=torch.ones(2, 6)), TypeError, "key_padding_mask must be a bool tensor"),
    ("mask shape", dict(key_padding_mask=torch.ones(2, 5, dtype=torch.bool)), ValueError, r"key_padding_mask must have shape \[2, 6\]"),
    ("causal not bool", dict(causal=1), TypeError, "causal must be True or False"),
    ("scale negative", dict(scale=-1.0), ValueError, "scale must be >= 0"),
    ("dropout_p above 1", dict(dropout_p=1.5), ValueError, "dropout_p must be >= 0.0 and <= 1.0"),
    ("backend unknown", dict(backend="fast"), ValueError, "unknown backend 'fast'"),
]


@pytest.mark.parametrize("overrides,error,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_named_error(overrides, error, message):
    with pytest.raises(error, match=message):
        call(**overrides)


def test_mixed_devices_name_both_tensors():
    with pytest.raises(ValueError, match="k is on meta but q is on cpu"):
        call(k=torch.randn(2, 2, 6, 16, device="meta"))


def varlen_call(**overrides):
    args = {"q": torch.randn(9, 4, 16), "k": torch.randn(11, 2, 16), "v": torch.randn(11, 2, 16),
            "cu_seqlens_q": torch.tensor([0, 4, 9], dtype=torch.int32),
            "cu_seqlens_k": torch.tensor([0, 5, 11], dtype=torch.int32),
            "max_seqlen_q": 5, "max_seqlen_k": 6}
    args.update(overrides)
    return fastattn.attention_varlen(**args)


VARLEN_CASES = [
    ("q 4D", dict(q=torch.randn(1, 9, 4, 16)), ValueError, "q must be 3D"),
    ("cu_seqlens int64", dict(cu_seqlens_q=torch.tensor([0, 4, 9])), TypeError, "cu_seqlens_q must be int32"),
    ("cu_seqlens not a tensor", dict(cu_seqlens_k=[0, 5, 11]), TypeError, "cu_seqlens_k must be a torch.Tensor"),
    ("cu_seqlens 2D", dict(cu_seqlens_q=torch.zeros(1, 3, dtype=torch.int32)), ValueError, "cu_seqlens_q must be 1D"),
    ("cu_seqlens batch differs", dict(cu_seqlens_k=torch.tensor([0, 11], dtype=torch.int32)), ValueError, "cu_seqlens_k must have cu_seqlens_q's shape"),
    ("cu_seqlens wrong total", dict(cu_seqlens_q=torch.tensor([0, 4, 8], dtype=torch.int32)), ValueError, "cu_seqlens_q must start at 0 and end at the token count 9"),
    ("cu_seqlens decreasing", dict(cu_seqlens_k=torch.tensor([0, 12, 11], dtype=torch.int32), max_seqlen_k=20), ValueError, "cu_seqlens_k must be non-decreasing"),
    ("max_seqlen too small", dict(max_seqlen_q=4), ValueError, r"max_seqlen_q \(4\) is smaller than the longest sequence"),
    ("max_seqlen not int", dict(max_seqlen_k=6.0), TypeError, "max_seqlen_k must be an int"),
]


@pytest.mark.parametrize("overrides,error,message", [c[1:] for c in VARLEN_CASES],
                         ids=[c[0] for c in VARLEN_CASES])
def test_varlen_bad_input_raises_named_error(overrides, error, message):
    with pytest.raises(error, match=message):
        varlen_call(**overrides)


def test_unpad_pad_round_trip_and_feed_varlen():
    """unpad keeps the real tokens in order (left padding and holes too); pad puts them back; varlen
    attention on the packed tokens equals padded attention on right-padded rows."""
    x = torch.randn(3, 6, 4, 16, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1], [1, 0, 1, 1, 0, 1]], dtype=torch.bool)
    packed, indices, cu_seqlens, max_seqlen = fastattn.unpad(x, mask)
    assert packed.shape == (int(mask.sum()), 4, 16)
    assert cu_seqlens.tolist() == [0, 3, 7, 11] and cu_seqlens.dtype == torch.int32 and max_seqlen == 4
    restored = fastattn.pad(packed, indices, 3, 6)
    assert torch.equal(restored, x * mask[:, :, None, None])
    restored.sum().backward()
    assert torch.equal(x.grad, mask[:, :, None, None].expand_as(x).float())

    right = torch.arange(6)[None, :] < torch.tensor([3, 4, 4])[:, None]
    q = torch.randn(3, 6, 4, 16)
    packed_q, indices, cu, max_len = fastattn.unpad(q, right)
    out = fastattn.attention_varlen(packed_q, packed_q, packed_q, cu, cu, max_len, max_len, causal=True)
    dense = fastattn.attention(*(q.transpose(1, 2),) * 3, causal=False, key_padding_mask=right)
    expected = reference.attention(*(q.transpose(1, 2),) * 3, key_padding_mask=right,
                                   causal=False).transpose(1, 2)
    assert torch.allclose(dense.transpose(1, 2).double(), expected, atol=1e-5)
    # Causal within each packed sequence = causal over the first len tokens of each padded row.
    for b in range(3):
        n = int(right[b].sum())
        qb = q[b:b + 1, :n].transpose(1, 2)
        ref = reference.attention(qb, qb, qb, causal=True)[0].transpose(0, 1)
        assert torch.allclose(out[cu[b]:cu[b + 1]].double(), ref, atol=1e-5)


def test_pad_and_unpad_bad_input():
    with pytest.raises(TypeError, match="key_padding_mask must be a bool tensor"):
        fastattn.unpad(torch.randn(2, 3, 4), torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"key_padding_mask must have shape \[2, 3\]"):
        fastattn.unpad(torch.randn(2, 3, 4), torch.ones(3, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="indices must be 1D with one entry per packed token"):
        fastattn.pad(torch.randn(4, 8), torch.arange(3), 2, 3)


def test_a_backend_without_attention_kernels_is_refused_with_its_reason(monkeypatch):
    """An installation whose cuda backend lacks fastattn/backends/cuda_attention.py (e.g. a wheel
    built before it existed) says so, instead of failing on an import."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None
                        if name == "fastattn.backends.cuda_attention" else find_spec(name, *args))
    attention_op._missing_backends.cache_clear()  # asked once per process: ask again here
    monkeypatch.setattr(attention_op, "_missing_backends",
                        functools.lru_cache(maxsize=None)(attention_op._missing_backends.__wrapped__))
    missing = missing_backends()
    assert "no cuda attention kernels" in missing["cuda"] and "cuda_attention.py" in missing["cuda"]
    # On CUDA tensors (dispatch needs only the device): the automatic choice passes it over, and
    # asking for it by name says why. CPU tensors would be refused earlier, for being on the CPU.
    cuda = torch.device("cuda")
    assert resolve_backend("attention", cuda, None, {**missing, "triton": "off"}) == "torch"
    if why_backend_cannot_run("cuda", cuda) is None:  # the extension is built here
        with pytest.raises(fastattn.BackendUnavailableError, match="no cuda attention kernels"):
            resolve_backend("attention", cuda, "cuda", missing)


def test_cpu_tensors_choose_the_torch_backend_and_scale_defaults_to_rsqrt_d():
    args, _ = good()
    out = fastattn.attention(args["q"], args["k"], args["v"])
    explicit = fastattn.attention(args["q"], args["k"], args["v"], scale=16 ** -0.5, backend="torch")
    assert torch.equal(out, explicit)


def op_args(dropout, masked):
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(2, 4, 5, 16, generator=generator, requires_grad=True)
    k = torch.randn(2, 2, 7, 16, generator=generator, requires_grad=True)
    v = torch.randn(2, 2, 7, 16, generator=generator, requires_grad=True)
    mask = torch.tensor([[1] * 7, [0, 1, 1, 0, 1, 1, 0]], dtype=torch.bool) if masked else None
    seed = torch.tensor([77], dtype=torch.int64) if dropout else None
    return (q, k, v, mask, None, None, 5, 7, True, 0.25, 0.3 if dropout else 0.0, seed, "torch")


@pytest.mark.parametrize("dropout,masked", [(False, False), (False, True), (True, True)])
def test_opcheck_forward_op(dropout, masked):
    torch.library.opcheck(torch.ops.fastattn.attention_fwd.default, op_args(dropout, masked))


def test_opcheck_backward_op():
    q, k, v, mask, cu_q, cu_k, sq, sk, causal, scale, p, seed, backend = op_args(False, True)
    out, saved = torch.ops.fastattn.attention_fwd(q, k, v, mask, None, None, sq, sk, causal, scale,
                                                  p, seed, backend)
    args = (torch.randn_like(out), q.detach(), k.detach(), v.detach(), out.detach(), saved.detach(), mask,
            None, None, sq, sk, causal, scale, p, seed, backend)
    torch.library.opcheck(torch.ops.fastattn.attention_bwd.default, args)


def attention_block(q, k, v, mask):
    """A model's use: attention on projections, then a residual-style sum."""
    return fastattn.attention(q, k, v, causal=True, key_padding_mask=mask) * 2 + q


@pytest.mark.parametrize("compiler", ["aot_eager", "inductor"])
def test_torch_compile_fullgraph_forward_and_backward(compiler):
    torch._dynamo.reset()
    compiled = torch.compile(attention_block, fullgraph=True, backend=compiler)
    q, k, v, mask = op_args(False, True)[:4]
    k2, v2 = k.detach().repeat_interleave(2, 1).requires_grad_(), v.detach().repeat_interleave(2, 1).requires_grad_()
    inputs = (q, k2[:, :, :5].detach().requires_grad_(), v2[:, :, :5].detach().requires_grad_())
    mask = mask[:, :5]
    out = compiled(*inputs, mask)
    ref_inputs = [t.detach().double().requires_grad_() for t in inputs]
    eager_inputs = [t.detach().clone().requires_grad_() for t in inputs]

    def ref_block(q, k, v, upcast):
        return reference.attention(q, k, v, causal=True, key_padding_mask=mask, upcast=upcast) * 2 + q

    ref_out, eager_out = ref_block(*ref_inputs, True), ref_block(*eager_inputs, False)
    assert_numerics("out", out, ref_out, eager_out)
    grad = torch.randn_like(out)
    for name, g, r, e in zip("qkv", torch.autograd.grad(out, inputs, grad),
                             torch.autograd.grad(ref_out, ref_inputs, grad.double()),
                             torch.autograd.grad(eager_out, eager_inputs, grad)):
        assert_grad_numerics(f"d{name}", g, r, e)


def test_torch_compile_with_dropout_repeats_under_seed():
    torch._dynamo.reset()

    def step(q, k, v):
        return fastattn.attention(q, k, v, dropout_p=0.5)

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    q, k, v = op_args(False, False)[:3]
    torch.manual_seed(5)
    first = compiled(q, k, v)
    torch.manual_seed(5)
    assert torch.equal(compiled(q, k, v), first)
    first.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))
