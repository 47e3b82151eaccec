"""The oracle: naive eager math that every backend is tested against.

Not a backend: nothing here is fast. Each function takes `upcast`: True computes in float64 (the
"ref" of the numerics rule), False in the inputs' own dtype (the "eager" baseline whose error sets
the tolerance). Autograd through these functions gives the reference gradients.
"""

import torch
import torch.nn.functional as F

_MASK32 = 0xFFFFFFFF
_PHILOX_ROUND_A, _PHILOX_ROUND_B = 0xD2511F53, 0xCD9E8D57
_PHILOX_KEY_A, _PHILOX_KEY_B = 0x9E3779B9, 0xBB67AE85
_UINT_TO_UNIFORM = 4.6566127342e-10  # Triton's scale: largest with INT32_MAX * scale < 1 in float32


def _mul_hi_lo(a, constant):
    """(high, low) 32-bit halves of a * constant for uint32 values held in int64, without overflow."""
    low_product = a * (constant & 0xFFFF)
    high_product = a * (constant >> 16)
    low = (low_product + ((high_product & 0xFFFF) << 16)) & _MASK32
    high = (high_product + (low_product >> 16)) >> 16
    return high, low


def philox_words(seed, offsets):
    """Triton's `tl.randint4x(seed, offsets)`: the four 32-bit output words (held in int64) of
    Philox-4x32-10 keyed by the 64-bit seed, counter (offset low, offset high, 0, 0)."""
    offsets = offsets.to(torch.int64)
    c0, c1 = offsets & _MASK32, (offsets >> 32) & _MASK32
    c2, c3 = torch.zeros_like(c0), torch.zeros_like(c0)
    k0, k1 = seed & _MASK32, (seed >> 32) & _MASK32
    for _ in range(10):
        high_b, low_b = _mul_hi_lo(c2, _PHILOX_ROUND_B)
        high_a, low_a = _mul_hi_lo(c0, _PHILOX_ROUND_A)
        c0, c1, c2, c3 = high_b ^ c1 ^ k0, low_b, high_a ^ c3 ^ k1, low_a
        k0, k1 = (k0 + _PHILOX_KEY_A) & _MASK32, (k1 + _PHILOX_KEY_B) & _MASK32
    return c0, c1, c2, c3


def philox_uniform(seed, offsets):
    """Triton's `tl.rand(seed, offsets)`: the first Philox word mapped to a float32 in [0, 1)."""
    return philox_word_to_uniform(philox_words(seed, offsets)[0])


def philox_word_to_uniform(word):
    """Triton's map of Philox's first 32-bit word (held in int64) to float32 in [0, 1): as int32,
    then |x| (-x - 1 for negatives), then scaled."""
    as_int32 = torch.where(word >= 2**31, word - 2**32, word)
    non_negative = torch.where(as_int32 < 0, -as_int32 - 1, as_int32)
    return non_negative.to(torch.float32) * torch.tensor(_UINT_TO_UNIFORM, dtype=torch.float32,
                                                         device=word.device)


def dropout_keep_mask(seed, shape, dropout_p, device="cpu"):
    """The keep mask the triton and cuda backends draw for a row-major tensor of `shape`."""
    numel = 1
    for size in shape:
        numel *= size
    uniform = philox_uniform(int(seed), torch.arange(numel, dtype=torch.int64))
    keep = uniform >= torch.tensor(dropout_p, dtype=torch.float32)
    return keep.reshape(shape).to(device)


def _compute_dtype(tensor, upcast):
    return torch.float64 if upcast else tensor.dtype


def layer_norm_residual(x, residual, weight, bias, eps=1e-5, *, keep_mask=None, dropout_p=0.0,
                        upcast=True):
    """(LN(h), h) with h = dropout(x) + residual; dropout applies `keep_mask` scaled by 1/(1-p)."""
    dtype = _compute_dtype(x, upcast)
    h = x.to(dtype)
    if keep_mask is not None:
        scale = 0.0 if dropout_p >= 1.0 else 1.0 / (1.0 - dropout_p)
        h = h * keep_mask.to(dtype) * scale
    if residual is not None:
        h = h + residual.to(dtype)
    y = F.layer_norm(h, (x.shape[-1],), weight.to(dtype), bias.to(dtype), eps)
    return y, h


ATTENTION_DROPOUT_GROUP = 8  # keys decided by one Philox evaluation: 4 words x 2 16-bit halves


def attention_dropout_groups(seqlen_k):
    """Philox counters per row of attention scores: one per ATTENTION_DROPOUT_GROUP keys
    (attention_dropout_keep_mask)."""
    return -(-seqlen_k // ATTENTION_DROPOUT_GROUP)


def philox_half_uniforms(words):
    """Philox words (int64 [..., 4]) -> float32 [..., 8]: each word's 16-bit halves, low half first,
    as u / 2**16. Exact, so that u / 2**16 >= p is u >= ceil(p * 2**16) for a float32 p, the
    integer test the kernels make."""
    halves = torch.stack((words & 0xFFFF, (words >> 16) & 0xFFFF), dim=-1)  # [..., 4, 2]
    return (halves.to(torch.float32) * (1.0 / 65536.0)).flatten(-2)


def attention_dropout_keep_mask(seed, batch, heads, seqlen_q, seqlen_k, dropout_p, device="cpu"):
    """The keep mask [batch, heads, seqlen_q, seqlen_k] of attention dropout. Keys come in groups of
    eight, each group one Philox evaluation (tl.randint4x) whose four 32-bit words, split into
    16-bit halves (low half first), decide its eight scores: score (b, h, i, j) is kept iff
    half j % 2 of word (j % 8) // 2 of philox_words(seed, row * G + j // 8), as
    philox_half_uniforms maps it, is >= dropout_p (a float32), with row = (b * heads + h) * seqlen_q + i
    and G = attention_dropout_groups(seqlen_k). So the drop probability is p rounded up to a
    multiple of 2**-16, while the kept scores are scaled by 1 / (1 - p). (One evaluation per score,
    as the other dropouts draw, cost the attention kernels about 80 integer instructions per score:
    more than the score's share of the matrix products; one per four, 20, still tripled the
    forward's time at GPT2's head size on an H100.) For varlen calls seqlen_q/k are
    max_seqlen_q/k and (i, j) positions inside sequence b."""
    groups = attention_dropout_groups(seqlen_k)
    counters = torch.arange(batch * heads * seqlen_q * groups, dtype=torch.int64, device=device)
    words = torch.stack(philox_words(int(seed), counters), dim=-1)  # [rows * groups, 4]
    uniform = philox_half_uniforms(words).reshape(-1, groups * ATTENTION_DROPOUT_GROUP)
    keep = uniform[:, :seqlen_k] >= torch.tensor(dropout_p, dtype=torch.float32, device=device)
    return keep.reshape(batch, heads, seqlen_q, seqlen_k)


def cross_entropy(logits, target, ignore_index=-100, *, upcast=True):
    """Per-row -log softmax(logits)[target] of logits [rows, n_cols]; 0 where target ==
    ignore_index."""
    return F.cross_entropy(logits.to(_compute_dtype(logits, upcast)), target,
                           ignore_index=ignore_index, reduction="none")


def attention_visible_keys(seqlen_q, seqlen_k, *, causal=False, key_padding_mask=None, device="cpu"):
    """Bool [B or 1, 1, seqlen_q, seqlen_k]: which keys each query sees. Causal is aligned
    bottom-right (query i sees keys j <= i + seqlen_k - seqlen_q); key_padding_mask [B, Sk] marks
    real keys with True."""
    visible = torch.ones(1, 1, seqlen_q, seqlen_k, dtype=torch.bool, device=device)
    if causal:
        rows = torch.arange(seqlen_q, device=device)[:, None]
        cols = torch.arange(seqlen_k, device=device)[None, :]
        visible = visible & (cols <= rows + seqlen_k - seqlen_q)
    if key_padding_mask is not None:
        visible = visible & key_padding_mask[:, None, None, :].to(device)
    return visible


def attention(q, k, v, *, causal=False, key_padding_mask=None, scale=None, keep_mask=None,
              dropout_p=0.0, upcast=True):
    """softmax(q k^T * scale, masked) (dropped out by keep_mask, scaled by 1/(1-p)) @ v.

    q [B, H, Sq, D], k/v [B, Hkv, Sk, D], query head h reading KV head h // (H / Hkv). A query row
    that sees no key gives zeros (and zero gradients), not NaN.
    """
    dtype = _compute_dtype(q, upcast)
    q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = torch.matmul(q, k.transpose(-1, -2)) * scale
    visible = attention_visible_keys(q.shape[2], k.shape[2], causal=causal,
                                     key_padding_mask=key_padding_mask, device=q.device)
    sees_a_key = visible.any(-1, keepdim=True)
    # Rows that see nothing get finite scores, so softmax (and its gradient) stays NaN-free; their
    # probabilities are zeroed just below.
    scores = scores.masked_fill(~visible & sees_a_key, float("-inf")).masked_fill(~sees_a_key, 0.0)
    probs = torch.softmax(scores, dim=-1).masked_fill(~visible, 0.0)
    if keep_mask is not None:
        probs = probs * keep_mask.to(dtype) * (0.0 if dropout_p >= 1.0 else 1.0 / (1.0 - dropout_p))
    return torch.matmul(probs, v)


def attention_varlen(q, k, v, cu_seqlens_q, cu_seqlens_k, *, causal=False, scale=None,
                     keep_mask=None, dropout_p=0.0, upcast=True):
    """Packed sequences: q [Tq, H, D], k/v [Tk, Hkv, D]; sequence b holds tokens
    cu_seqlens[b]:cu_seqlens[b+1]. keep_mask is [B, H, max_seqlen_q, max_seqlen_k] (positions within
    each sequence), as attention_dropout_keep_mask draws it."""
    outputs = []
    bounds_q, bounds_k = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
    for b in range(len(bounds_q) - 1):
        q_b = q[bounds_q[b]:bounds_q[b + 1]].transpose(0, 1)[None]
        k_b = k[bounds_k[b]:bounds_k[b + 1]].transpose(0, 1)[None]
        v_b = v[bounds_k[b]:bounds_k[b + 1]].transpose(0, 1)[None]
        keep_b = None
        if keep_mask is not None:
            keep_b = keep_mask[b:b + 1, :, :q_b.shape[2], :k_b.shape[2]]
        out_b = attention(q_b, k_b, v_b, causal=causal, scale=scale, keep_mask=keep_b,
                          dropout_p=dropout_p, upcast=upcast)
        outputs.append(out_b[0].transpose(0, 1))
    return torch.cat(outputs, dim=0)


def visible_keys(shape, key_padding_mask=None, causal=False, device="cpu"):
    """Bool [B or 1, 1, Sq, Sk]: which keys each query of scores of `shape` [B, H, Sq, Sk] sees.
    key_padding_mask [B, Sk] (True = a real token); causal is bottom-right aligned: query i sees
    keys j <= i + Sk - Sq."""
    _, _, queries, keys = shape
    visible = torch.ones(1, 1, queries, keys, dtype=torch.bool, device=device)
    if causal:
        query = torch.arange(queries, device=device)[:, None]
        key = torch.arange(keys, device=device)[None, :]
        visible = visible & (key <= query + keys - queries)
    if key_padding_mask is not None:
        visible = visible & key_padding_mask[:, None, None, :].to(device=device, dtype=torch.bool)
    return visible


def masked_softmax(scores, key_padding_mask=None, causal=False, scale=1.0, upcast=True):
    """softmax(scale * scores) over the keys each query sees; zero at hidden keys, and an all-zero
    row (with zero gradient) where a query sees no key."""
    dtype = _compute_dtype(scores, upcast)
    visible = visible_keys(scores.shape, key_padding_mask, causal, scores.device)
    any_visible = visible.any(dim=-1, keepdim=True)
    logits = (scores.to(dtype) * scale).masked_fill(~visible, float("-inf"))
    # Rows with nothing visible get finite logits, so neither they nor their gradient turn NaN.
    logits = torch.where(any_visible, logits, torch.zeros_like(logits))
    return torch.softmax(logits, dim=-1) * any_visible.to(dtype)


def bias_gelu(x, bias, approximate="none", upcast=True):
    """gelu(x + bias) with torch's GELU ("none": erf, "tanh": GPT2's gelu_new)."""
    dtype = _compute_dtype(x, upcast)
    return F.gelu(x.to(dtype) + bias.to(dtype), approximate=approximate)


def ffn(x, w1, b1, w2, b2, approximate="none", *, keep_mask=None, dropout_p=0.0, upcast=True):
    """linear(gelu(linear(x, w1, b1)), w2, b2), weights [out, in]; dropout applies `keep_mask`
    (shaped like the output) scaled by 1/(1-p)."""
    dtype = _compute_dtype(x, upcast)
    hidden = F.gelu(F.linear(x.to(dtype), w1.to(dtype), b1.to(dtype)), approximate=approximate)
    out = F.linear(hidden, w2.to(dtype), b2.to(dtype))
    if keep_mask is not None:
        out = out * keep_mask.to(dtype) * (0.0 if dropout_p >= 1.0 else 1.0 / (1.0 - dropout_p))
    return out
