"""The standalone fastattn.nn modules against the eager composition they replace (float64 ref,
float32 eager, numerics rule), and SelfAttention's padded and packed forms against each other."""

import copy

import torch
import torch.nn.functional as F

import fastattn
from fastattn.nn import GeluFFN, LayerNormResidual, PackedBatch, SelfAttention
from numerics import assert_numerics

torch.manual_seed(0)


def _upcast(module):
    return copy.deepcopy(module).double()


def test_layer_norm_residual_is_a_layer_norm():
    ln = LayerNormResidual(48, eps=1e-6)
    assert isinstance(ln, torch.nn.LayerNorm) and list(ln.state_dict()) == ["weight", "bias"]
    x, r = torch.randn(5, 7, 48), torch.randn(5, 7, 48)
    with torch.no_grad():
        ln.weight.normal_(1, 0.1), ln.bias.normal_(0, 0.1)
    eager = F.layer_norm(x + r, (48,), ln.weight, ln.bias, 1e-6)
    ref = F.layer_norm((x + r).double(), (48,), ln.weight.double(), ln.bias.double(), 1e-6)
    assert_numerics("y", ln(x, r), ref, eager)
    y, h = ln(x, r, return_residual=True)
    assert torch.equal(h, x + r)


def test_layer_norm_residual_adopt_and_release():
    ln = torch.nn.LayerNorm(16)
    same = LayerNormResidual.adopt(ln)
    assert same is ln and type(ln) is LayerNormResidual and ln.dropout_p == 0.0
    assert type(ln.release()) is torch.nn.LayerNorm and "dropout_p" not in vars(ln)


def test_gelu_ffn():
    for approximate in ("none", "tanh"):
        ffn = GeluFFN(32, 77, approximate=approximate)
        x = torch.randn(3, 11, 32)

        def eager(m, x):
            return m.fc2(F.gelu(m.fc1(x), approximate=approximate))

        assert_numerics(f"ffn {approximate}", ffn(x), eager(_upcast(ffn), x.double()), eager(ffn, x))


def _eager_attention(m, x, mask, causal):
    batch, seqlen, hidden = x.shape
    q, k, v = m.qkv(x).view(batch, seqlen, 3, m.num_heads, -1).permute(2, 0, 3, 1, 4)
    allowed = mask[:, None, None, :]
    if causal:
        allowed = allowed & torch.ones(seqlen, seqlen, dtype=torch.bool).tril()
    scores = (q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
    probs = scores.masked_fill(~allowed, float("-inf")).softmax(-1).nan_to_num(0.0)
    return m.out((probs @ v).transpose(1, 2).reshape(batch, seqlen, hidden))


def test_self_attention_padded_and_packed():
    mask = torch.tensor([[1] * 9, [1] * 4 + [0] * 5, [0, 0, 1, 1, 0, 1, 1, 1, 0]], dtype=torch.bool)
    x = torch.randn(3, 9, 64)
    for causal in (False, True):
        attention = SelfAttention(64, 4, causal=causal)
        padded = attention(x, key_padding_mask=mask)
        ref = _eager_attention(_upcast(attention), x.double(), mask, causal)
        eager = _eager_attention(attention, x, mask, causal)
        assert_numerics(f"padded causal={causal}", padded[mask], ref[mask], eager[mask])
        for keep_padding in (False, True):  # real tokens only, or padding kept as masked rows
            x_packed, packing = PackedBatch.pack(x, mask, keep_padding=keep_padding)
            assert x_packed.shape[0] == (27 if keep_padding else int(mask.sum()))
            packed = packing.unpack(attention.forward_packed(x_packed, packing))
            # Causal on packed tokens = causal among each row's real tokens: the same for real
            # queries.
            assert_numerics(f"packed causal={causal} keep_padding={keep_padding}", packed[mask],
                            ref[mask], eager[mask])
            assert (packed[~mask] == 0).all()


def test_packed_batch_without_mask_is_a_reshape():
    x = torch.randn(2, 5, 8)
    packed, packing = PackedBatch.pack(x)
    assert packing.indices is None and packing.cu_seqlens.tolist() == [0, 5, 10]
    assert packed.data_ptr() == x.data_ptr() and torch.equal(packing.unpack(packed), x)
    assert fastattn.nn.PackedBatch is PackedBatch
