"""The attention test suite. Each tier's test module imports these tests; the tier's conftest.py
supplies `backend`, `dtype` and `device`. Sizes are small (the interpret tier runs them through the
Triton interpreter); the gpu tier adds real sizes in its own module."""

import pytest
import torch

import attn_cases
import fastattn
from fastattn import BackendUnavailableError, reference
from fastattn.ops.attention import TRITON_HEAD_DIMS, missing_backends

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # the GPU machines have pytest but not hypothesis
    given = None


@pytest.fixture(autouse=True)
def _skip_backends_without_attention(request):
    backend = request.node.callspec.params.get("backend") if hasattr(request.node, "callspec") else None
    reason = missing_backends().get(backend)
    if reason:
        pytest.skip(f"backend {backend!r}: {reason}")


# (B, H, Hkv, Sq, Sk, D): odd sizes, Sq != Sk both ways, MQA/GQA, every head-dim tile class.
SHAPES = [
    (1, 2, 2, 1, 1, 16),
    (2, 2, 2, 7, 7, 32),
    (1, 2, 1, 113, 257, 16),
    (2, 2, 2, 257, 113, 16),
    (1, 4, 2, 113, 113, 64),
    (1, 1, 1, 7, 33, 80),
    (1, 1, 1, 33, 7, 96),
    (1, 1, 1, 17, 17, 128),
    (1, 2, 1, 19, 40, 256),
    (1, 2, 1, 3, 70, 256),  # the decode tiles (few queries) at the widest head
]


def _shape_id(shape):
    return "B{}H{}kv{}-q{}k{}-d{}".format(*shape)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("shape", SHAPES, ids=_shape_id)
def test_matches_reference(backend, device, dtype, shape, causal):
    q, k, v = attn_cases.make_qkv(*shape, dtype, device)
    attn_cases.check_dense(backend, q, k, v, causal=causal)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("pattern", ["mixed", "empty_row"])
def test_key_padding_mask(backend, device, dtype, pattern, causal):
    """Right padding, left padding and holes; "empty_row": a batch row without any real key, so
    its queries see nothing (zeros out, zero gradients)."""
    q, k, v = attn_cases.make_qkv(3, 2, 2, 65, 130, 32, dtype, device, seed=2)
    mask = attn_cases.key_padding_mask(pattern, 3, 130, device)
    attn_cases.check_dense(backend, q, k, v, causal=causal, mask=mask)


def test_non_contiguous_inputs_and_explicit_scale(backend, device, dtype):
    q, k, v = attn_cases.make_qkv(2, 4, 2, 37, 50, 32, dtype, device, seed=3, layout="bshd")
    assert not q.is_contiguous()
    attn_cases.check_dense(backend, q, k, v, causal=True, scale=0.3)


@pytest.mark.parametrize("mask_pattern", [None, "empty_row"], ids=["nomask", "empty_row"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_zero_scale(backend, device, dtype, causal, mask_pattern):
    """scale=0: every visible key weighs the same. The Triton forward keeps the scale in the
    exponent's argument for blocks without hidden keys and scales before masking in the others
    (a hidden key's -inf times 0 would be NaN); 200 keys give both kinds of block."""
    q, k, v = attn_cases.make_qkv(3, 2, 2, 70, 200, 32, dtype, device, seed=4)
    mask = (None if mask_pattern is None
            else attn_cases.key_padding_mask(mask_pattern, 3, 200, device))
    attn_cases.check_dense(backend, q, k, v, causal=causal, mask=mask, scale=0.0)


@pytest.mark.parametrize("with_mask", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_no_keys_at_all(backend, device, dtype, causal, with_mask):
    """Sk = 0 (an empty context): every query sees nothing, so zeros out and zero gradients, with
    or without a key padding mask (then [B, 0]). The triton backend failed on the empty mask."""
    generator = torch.Generator().manual_seed(9)
    q = torch.randn(2, 2, 5, 32, generator=generator).to(device, dtype).requires_grad_()
    k, v = (torch.empty(2, 2, 0, 32, device=device, dtype=dtype, requires_grad=True)
            for _ in range(2))
    mask = torch.zeros(2, 0, dtype=torch.bool, device=device) if with_mask else None
    out = fastattn.attention(q, k, v, causal=causal, key_padding_mask=mask, backend=backend)
    assert out.shape == q.shape and out.dtype == dtype and torch.equal(out, torch.zeros_like(out))
    out.backward(torch.randn(out.shape, generator=generator).to(device, dtype))
    assert torch.equal(q.grad, torch.zeros_like(q)) and k.grad.shape == k.shape


# Head dims the triton kernels are not built for: transformers' tiny test models (hidden 32 over 4
# heads: 8), and odd ones.
OTHER_HEAD_DIMS = [1, 8, 48]


@pytest.mark.parametrize("head_dim", OTHER_HEAD_DIMS)
def test_head_dims_beyond_the_triton_kernels(backend, device, dtype, head_dim):
    """cuda and torch take any head dim, dense and packed. triton named explicitly refuses one it
    has no kernels for, with the reason; the automatic choice then runs the next backend."""
    assert head_dim not in TRITON_HEAD_DIMS
    q, k, v = attn_cases.make_qkv(3, 2, 1, 9, 21, head_dim, dtype, device, seed=7)
    mask = attn_cases.key_padding_mask("mixed", 3, 21, device)
    if backend == "triton":
        with pytest.raises(BackendUnavailableError, match=f"head dim {head_dim} is not one of"):
            fastattn.attention(q, k, v, backend="triton")
        backend = None
    attn_cases.check_dense(backend, q, k, v, causal=True, mask=mask)
    attn_cases.check_varlen(backend, [5, 0, 12], [9, 0, 12], 2, 1, head_dim, dtype, device,
                            causal=False)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_varlen(backend, device, dtype, causal):
    """Packed sequences of odd lengths, an empty one, more queries than keys in one (causal rows
    that see nothing), GQA."""
    attn_cases.check_varlen(backend, [7, 0, 113, 30, 1], [7, 0, 90, 57, 1], 4, 2, 32, dtype, device,
                            causal)


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_varlen_uniform_lengths(backend, device, dtype, causal):
    """Every sequence the same length (one sequence, or a batch without padding: what a patched
    encoder packs most often); the torch backend runs it as a dense batch."""
    attn_cases.check_varlen(backend, [19, 19, 19], [19, 19, 19], 4, 2, 32, dtype, device, causal)
    attn_cases.check_varlen(backend, [40], [40], 2, 2, 64, dtype, device, causal)


def test_varlen_strided_cu_seqlens(backend, device, dtype):
    """cu_seqlens as a strided view (every other entry of a larger tensor): the kernels must read
    its values, not the memory between them (they read garbage there and returned NaN)."""
    lengths = [5, 0, 9, 3]
    q, k, v, cu, _ = attn_cases.varlen_inputs(lengths, lengths, 2, 1, 32, dtype, device)
    strided = torch.stack([cu, torch.full_like(cu, 99)], dim=1).flatten()[::2]
    assert not strided.is_contiguous() and torch.equal(strided, cu)

    def run(q, k, v):
        return fastattn.attention_varlen(q, k, v, strided, strided, max(lengths), max(lengths),
                                         causal=True, backend=backend)

    def ref_run(q, k, v, upcast):
        return reference.attention_varlen(q, k, v, cu, cu, causal=True, upcast=upcast)

    attn_cases.compare(run, ref_run, (q, k, v))


def test_more_sequence_head_pairs_than_a_triton_grid_axis_takes(backend, device, dtype):
    """The triton kernels give each (sequence, head) pair a program on a grid axis that CUDA caps
    at 65535 (a packed batch of 6000 sequences of 12 heads exceeds it): triton refuses such a call
    by name, and the automatic choice passes over it."""
    q, k, v = attn_cases.make_qkv(21846, 3, 3, 3, 3, 16, dtype, device, seed=8)  # 65538 pairs
    if backend == "triton":
        with pytest.raises(BackendUnavailableError, match="21846 sequences x 3 heads"):
            fastattn.attention(q, k, v, backend=backend)
        backend = None
    attn_cases.check_dense(backend, q, k, v, causal=True)


def test_a_jit_trace_replays_on_new_inputs(backend, device, dtype):
    """torch.jit.trace records tensor ops, and a Triton or CUDA launch is none: the record must hold
    the fused op itself (fastattn::attention_fwd, run again on replay), and its gradients too."""
    import warnings

    mask = attn_cases.key_padding_mask("empty_row", 3, 37, device)
    traced_inputs = attn_cases.make_qkv(3, 4, 2, 37, 37, 32, dtype, device, seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # jit.trace is deprecated
        traced = torch.jit.trace(
            lambda q, k, v, mask: fastattn.attention(q, k, v, causal=True, key_padding_mask=mask,
                                                     backend=backend),
            (*traced_inputs, mask))

    def ref_run(q, k, v, upcast):
        return reference.attention(q, k, v, causal=True, key_padding_mask=other_mask,
                                   upcast=upcast)

    other_mask = attn_cases.key_padding_mask("mixed", 3, 37, device, seed=1).flip(1)
    attn_cases.compare(lambda q, k, v: traced(q, k, v, other_mask), ref_run,
                       attn_cases.make_qkv(3, 4, 2, 37, 37, 32, dtype, device, seed=7))


@pytest.mark.parametrize("case", ["one_query", "few_queries_masked"])
def test_decode_split_keys(backend, device, dtype, case):
    """KV-cache decoding: one (or a few) queries against many keys and few heads, so the triton
    backend splits the keys over programs and combines them."""
    if case == "one_query":
        q, k, v = attn_cases.make_qkv(1, 2, 1, 1, 1000, 64, dtype, device, seed=4)
        attn_cases.check_dense(backend, q, k, v, causal=True)
    else:
        q, k, v = attn_cases.make_qkv(2, 2, 2, 3, 700, 32, dtype, device, seed=5)
        mask = attn_cases.key_padding_mask("mixed", 2, 700, device)
        attn_cases.check_dense(backend, q, k, v, causal=True, mask=mask)


# (B, H, Hkv, Sk, D) of decoding steps (one query a head) whose query heads share KV heads: they
# run as query rows of fewer heads (fastattn.ops.attention._grouped_query_rows): multi-query with
# 12 heads (12 rows a head), with 48 (16 rows: three heads), GQA of 8 over 2 (4 rows).
GROUPED_DECODE = [(2, 12, 1, 77, 64), (1, 48, 1, 300, 16), (3, 8, 2, 50, 32)]


@pytest.mark.parametrize("mask", [None, "mixed", "empty_row"])
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("shape", GROUPED_DECODE, ids=lambda s: "B{}H{}kv{}-k{}-d{}".format(*s))
def test_decode_with_grouped_kv_heads(backend, device, dtype, shape, causal, mask):
    batch, heads, kv_heads, seqlen_k, head_dim = shape
    q, k, v = attn_cases.make_qkv(batch, heads, kv_heads, 1, seqlen_k, head_dim, dtype, device,
                                  seed=11)
    if mask is not None:
        mask = attn_cases.key_padding_mask(mask, batch, seqlen_k, device)
    attn_cases.check_dense(backend, q, k, v, causal=causal, mask=mask)


@pytest.mark.parametrize("head_dim", [32, 64, 128], ids=["d32", "d64", "d128"])
@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked_causal"])
def test_dropout_matches_reference(backend, device, dtype, masked, head_dim):
    """D=64: BERT's and GPT2's heads, which train with attention dropout (float32 models too);
    D=128: the widest tile class (80-128) with its own dropout tiles."""
    q, k, v = attn_cases.make_qkv(2, 2, 1, 70, 90, head_dim, dtype, device, seed=6)
    mask = attn_cases.key_padding_mask("mixed", 2, 90, device) if masked else None
    attn_cases.check_dropout_against_reference(backend, q, k, v, causal=masked, mask=mask)


def test_dropout_statistics_and_repeatability(backend, device):
    attn_cases.check_dropout_statistics(backend, device)


@pytest.mark.parametrize("head_dim", [64, 128, 256], ids=["d64", "d128", "d256"])
def test_float32_with_tf32_allowed(backend, device, head_dim):
    """float32 with torch.backends.cuda.matmul.allow_tf32 = True: the triton kernels take 1-pass
    TF32 dots, and every float32 tile runs, those switched off for spilling under 3-pass (dK/dV at
    D=128, everything at D=256) included; the reference in float32 is then TF32 matmuls too, which
    sets the numerics rule's scale on a GPU. D=64: BERT's and GPT2's heads trained under TF32."""
    q, k, v = attn_cases.make_qkv(2, 2, 1, 37, 70, head_dim, torch.float32, device, seed=9)
    mask = attn_cases.key_padding_mask("mixed", 2, 70, device)
    try:
        with attn_cases.tf32_allowed():
            attn_cases.check_dense(backend, q, k, v, causal=True, mask=mask)
    except BackendUnavailableError as error:  # the gpu tier would report a switch-off as a skip
        pytest.fail(f"{backend} refused a float32 call with TF32 allowed: {error}")


if given is None:
    def test_property_random_shapes():
        pytest.skip("hypothesis is not installed: the property-based test needs it")
else:
    @settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(batch=st.integers(1, 2), kv_heads=st.integers(1, 2), group=st.integers(1, 2),
           seqlen_q=st.integers(1, 80), seqlen_k=st.integers(1, 80),
           head_dim=st.sampled_from([16, 32, 80]), causal=st.booleans(),
           masked=st.booleans(), seed=st.integers(0, 2**16))
    def test_property_random_shapes(backend, device, dtype, batch, kv_heads, group, seqlen_q,
                                    seqlen_k, head_dim, causal, masked, seed):
        q, k, v = attn_cases.make_qkv(batch, kv_heads * group, kv_heads, seqlen_q, seqlen_k,
                                      head_dim, dtype, device, seed=seed)
        mask = attn_cases.key_padding_mask("mixed", batch, seqlen_k, device, seed) if masked else None
        attn_cases.check_dense(backend, q, k, v, causal=causal, mask=mask)
