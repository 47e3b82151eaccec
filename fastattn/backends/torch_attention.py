"""Attention with stock PyTorch ops: the fallback that runs anywhere.

Forward: scaled_dot_product_attention with the equivalent boolean mask (SDPA's own causal flag when
Sq == Sk; bottom-right causal, key padding and varlen sequence bounds as an explicit mask). SDPA
returns NaN for a query row that sees no key, so such rows are given a dummy all-visible row and
their output is zeroed. Varlen inputs are padded to [B, H, max_seqlen, D] and packed back.
Dropout draws the same Philox keep mask as the triton backend (torch_philox: the oracle's
fastattn.reference.attention_dropout_keep_mask, made faster) and runs the eager composition, since
SDPA's own dropout cannot be replayed.

Batches without padding take no padding machinery: a key_padding_mask of all True is dropped,
packed sequences of one common length run as a dense batch, and a single causal query (a
KV-cache decoding step: it sees every key) builds no mask. Padded batches (a
key_padding_mask, no dropout) leave out the key columns no query sees and may split the batch into
buckets by length: torch_attention_windows.plan decides, and the backward follows the same plan.
With dropout the keep mask's layout is the whole [B, H, Sq, Sk], so the eager path runs uncut.

Saved for the backward (SAVED_SOFTMAX = "none"): nothing. The backward recomputes the forward
(with a fixed seed, the same dropout mask) and differentiates it with autograd, which reaches
SDPA's fused backward. Inside a custom op's implementation (the torch.compile path) autograd is
off, and the gradients are formed in closed form instead (torch_attention_grads).
"""

import torch
import torch.nn.functional as F

from .. import _tensor_memo
from .._rng import dropout_scale
from ..ops import cu_seqlens_facts
from ..reference import attention_visible_keys
from . import torch_attention_windows, torch_philox
from ._attention_layout import VarlenPadding, key_bounds
from .torch_attention_grads import attention_grads, every_row_sees_a_key_on_cpu, probabilities

SAVED_SOFTMAX = "none"


def saved_softmax_like(q, k, cu_seqlens_q, max_seqlen_q, max_seqlen_k):
    return q.new_empty(0, dtype=torch.float32)


def _sdpa(q, k, v, visible, is_causal, scale):
    """SDPA with rows that see no key returning zeros instead of NaN."""
    def sdpa(mask):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal,
                                              scale=scale, enable_gqa=q.shape[1] != k.shape[1])

    if visible is None:
        return sdpa(None)
    sees_a_key = visible.any(-1, keepdim=True)
    if every_row_sees_a_key_on_cpu(sees_a_key):
        # No dummy-row fill and zeroing: two-fifths of a CPU decoding step's SDPA.
        return sdpa(visible)
    out = sdpa(visible | ~sees_a_key)
    return out * sees_a_key.to(out.dtype)


def _keep_mask(seed, q, k, dropout_p):
    """The dropout keep mask [B, H, Sq, Sk] of dense q, k (None without dropout)."""
    if seed is None:
        return None
    return torch_philox.attention_keep_mask(seed, q.shape[0], q.shape[1], q.shape[2], k.shape[2],
                                            dropout_p, q.device)


def _eager_with_dropout(q, k, v, visible, scale, dropout_p, keep):
    group = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    probs = probabilities(q, k, visible, scale) * keep * dropout_scale(dropout_p)
    return torch.matmul(probs.to(v.dtype), v)


def _dense_visible(q, k, key_padding_mask, causal):
    """Bool [B or 1, 1, Sq, Sk] of the keys each query sees, or None when it sees all of them."""
    # One query row (KV-cache decoding), aligned bottom-right, sees every key: no causal mask.
    causal = causal and q.shape[2] > 1
    if key_padding_mask is None and not causal:
        return None
    if not causal:  # a view of the mask, not a [B, 1, Sq, Sk] copy
        return key_padding_mask[:, None, None, :].expand(-1, 1, q.shape[2], -1)
    return attention_visible_keys(q.shape[2], k.shape[2], causal=causal,
                                  key_padding_mask=key_padding_mask, device=q.device)


def _mask_values_readable(mask):
    """False while a CUDA graph is being captured (a patched model's decoding step under
    torch.compile's CUDA graphs): reading a device tensor back is a sync, which capture forbids.
    The plans that need the mask's values then give way to one masked SDPA call."""
    return not (mask.is_cuda and torch.cuda.is_current_stream_capturing())


def _pieces(q, k, key_padding_mask, keep):
    """torch_attention_windows' plan for this padded batch, or None: the problem as it is."""
    if key_padding_mask is None or keep is not None or not _mask_values_readable(key_padding_mask):
        return None
    if not torch_attention_windows.worth_planning(*q.shape[:3], k.shape[2], q.shape[3],
                                                  q.device.type):
        return None
    bounds = _tensor_memo.remembered(key_padding_mask, "_fastattn_key_bounds",
                                     lambda mask: key_bounds(mask).tolist())
    return torch_attention_windows.plan(bounds, q.shape[1], q.shape[2], k.shape[2], q.shape[3],
                                        q.element_size(), q.device.type)


def _piece_inputs(pieces, queries, keys, visible):
    """For each piece: (piece, rows index or None, [its rows of each query-like tensor, its rows and
    key columns of each key-like tensor, of the visible mask])."""
    for piece in pieces:
        rows = None if piece.rows is None else torch.tensor(piece.rows, device=visible.device)
        take = (lambda t: t) if rows is None else (lambda t: t.index_select(0, rows))
        yield piece, rows, ([take(t) for t in queries] + [take(t)[:, :, piece.keys] for t in keys]
                            + [take(visible)[..., piece.keys]])


def _put(target, rows, keys, value):
    if rows is None:
        target[:, :, keys] = value
    else:
        target[rows, :, keys] = value


def _all_real(key_padding_mask):
    """True when the mask marks every key real (a batch without padding, as Hugging Face passes for
    unpadded input): it then says nothing, and SDPA runs without one. Read once per mask tensor (a
    device read on GPUs), not while torch.compile traces."""
    if (key_padding_mask is None or torch.compiler.is_compiling()
            or not _mask_values_readable(key_padding_mask)):
        return False
    return _tensor_memo.remembered(key_padding_mask, "_fastattn_all_real",
                                   lambda mask: bool(mask.all()))


def _dense_attention(q, k, v, key_padding_mask, causal, scale, dropout_p, seed):
    if _all_real(key_padding_mask):
        key_padding_mask = None
    keep = _keep_mask(seed, q, k, dropout_p)
    # SDPA's causal flag is top-left aligned: the same as ours only when Sq == Sk.
    if (causal and key_padding_mask is None and keep is None and q.shape[2] == k.shape[2]):
        return _sdpa(q, k, v, None, True, scale)
    visible = _dense_visible(q, k, key_padding_mask, causal)
    if keep is not None:
        return _eager_with_dropout(q, k, v, visible, scale, dropout_p, keep)
    pieces = _pieces(q, k, key_padding_mask, keep)
    if pieces is None:
        return _sdpa(q, k, v, visible, False, scale)
    out = torch.zeros_like(q, memory_format=torch.contiguous_format)  # rows seeing no key stay 0
    for _piece, rows, (q_rows, k_rows, v_rows, visible_rows) in _piece_inputs(pieces, [q], [k, v],
                                                                              visible):
        _put(out, rows, slice(None), _sdpa(q_rows, k_rows, v_rows, visible_rows, False, scale))
    return out


def _dense_grads(dout, q, k, v, key_padding_mask, causal, scale, dropout_p, seed):
    visible, keep = _dense_visible(q, k, key_padding_mask, causal), _keep_mask(seed, q, k, dropout_p)
    pieces = _pieces(q, k, key_padding_mask, keep)
    if pieces is None:
        return attention_grads(dout, q, k, v, visible, keep, dropout_p, scale)
    grads = tuple(torch.zeros_like(t, memory_format=torch.contiguous_format) for t in (q, k, v))
    for piece, rows, (dout_rows, q_rows, k_rows, v_rows, visible_rows) in _piece_inputs(
            pieces, [dout, q], [k, v], visible):
        dq, dk, dv = attention_grads(dout_rows, q_rows, k_rows, v_rows, visible_rows, None, 0.0, scale)
        _put(grads[0], rows, slice(None), dq)
        _put(grads[1], rows, piece.keys, dk)
        _put(grads[2], rows, piece.keys, dv)
    return grads


class _Varlen(VarlenPadding):
    """The padded problem plus which keys each padded query row sees."""

    def __init__(self, q, k, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal):
        super().__init__(q, k, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k)
        self.visible = self._visible(cu_seqlens_q, cu_seqlens_k, causal)

    def _visible(self, cu_seqlens_q, cu_seqlens_k, causal):
        """Bool [B, 1, max_q, max_k]: key j of sequence b is visible to its query i."""
        lengths_q = (cu_seqlens_q[1:] - cu_seqlens_q[:-1]).long()[:, None, None, None]
        lengths_k = (cu_seqlens_k[1:] - cu_seqlens_k[:-1]).long()[:, None, None, None]
        rows = torch.arange(self.max_q, device=cu_seqlens_q.device)[:, None]
        cols = torch.arange(self.max_k, device=cu_seqlens_q.device)[None, :]
        visible = (rows < lengths_q) & (cols < lengths_k)
        if causal:
            visible = visible & (cols <= rows + lengths_k - lengths_q)
        return visible


def _varlen_attention(q, k, v, varlen, scale, dropout_p, seed):
    q_padded, k_padded = varlen.pad_q(q), varlen.pad_k(k)
    keep = _keep_mask(seed, q_padded, k_padded, dropout_p)
    if keep is not None:
        padded = _eager_with_dropout(q_padded, k_padded, varlen.pad_k(v), varlen.visible, scale,
                                     dropout_p, keep)
    else:
        padded = _sdpa(q_padded, k_padded, varlen.pad_k(v), varlen.visible, False, scale)
    return varlen.pack_q(padded)


def _uniform_length(q, k, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k):
    """L when every sequence holds exactly L queries and L keys, L = max_seqlen_q = max_seqlen_k
    (one sequence, or a batch without padding): packed [B * L, H, D] is then a dense [B, H, L, D]
    batch, down to the dropout keep mask's layout. Else None. Decided from cu_seqlens' host facts
    when they are already known (the eager front reads or is given them), never by reading the
    device; without them (torch.compile) the padded path runs."""
    if torch.compiler.is_compiling() or max_seqlen_q != max_seqlen_k or max_seqlen_q < 1:
        return None
    facts_q = cu_seqlens_facts.known(cu_seqlens_q)
    # Self-attention passes one tensor for both (on the CPU each known() is a read).
    facts_k = facts_q if cu_seqlens_k is cu_seqlens_q else cu_seqlens_facts.known(cu_seqlens_k)
    if facts_q is None or facts_k is None:
        return None
    batch = cu_seqlens_q.shape[0] - 1
    # Lengths at most `longest` that add up to batch * longest are all equal to it.
    if (facts_q.longest == facts_k.longest == max_seqlen_q and q.shape[0] == batch * max_seqlen_q
            and k.shape[0] == batch * max_seqlen_k):
        return max_seqlen_q
    return None


def _attention(q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
               causal, scale, dropout_p, seed):
    if cu_seqlens_q is None:
        return _dense_attention(q, k, v, key_padding_mask, causal, scale, dropout_p, seed)
    length = _uniform_length(q, k, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k)
    if length is not None:  # no padding to add and strip, no mask to build
        def dense(t):
            return t.unflatten(0, (-1, length)).transpose(1, 2)

        out = _dense_attention(dense(q), dense(k), dense(v), None, causal, scale, dropout_p, seed)
        return out.transpose(1, 2).flatten(0, 1)
    varlen = _Varlen(q, k, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal)
    return _varlen_attention(q, k, v, varlen, scale, dropout_p, seed)


def attention_inference(q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                        max_seqlen_k, causal, scale):
    """The output of a call that keeps nothing for a backward and has no dropout: what the op front
    runs in plain eager mode, without the fused op's wrappers and saved-softmax placeholder."""
    return _attention(q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                      max_seqlen_k, causal, scale, 0.0, None).contiguous()


def attention_fwd(q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                  max_seqlen_k, causal, scale, dropout_p, seed):
    with torch.no_grad():
        out = _attention(q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                         max_seqlen_k, causal, scale, dropout_p, seed)
    return out.contiguous(), saved_softmax_like(q, k, cu_seqlens_q, max_seqlen_q, max_seqlen_k)


def _autograd_works_here():
    """False inside a torch.library custom op's implementation (the torch.compile path), where
    autograd is dispatched below and torch.enable_grad() cannot turn it back on."""
    probe = torch.zeros((), requires_grad=True)
    with torch.enable_grad():
        return (probe * 1.0).requires_grad


def attention_bwd(dout, q, k, v, out, saved_softmax, key_padding_mask, cu_seqlens_q, cu_seqlens_k,
                  max_seqlen_q, max_seqlen_k, causal, scale, dropout_p, seed):
    options = (key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal,
               scale, dropout_p, seed)
    if _autograd_works_here():
        # Differentiate the recomputed forward: SDPA's own fused backward (flash / memory-efficient
        # kernels) on a GPU, 10-20x the closed form's speed on an H200 (2026-11-26).
        leaves = tuple(t.detach().requires_grad_() for t in (q, k, v))
        with torch.enable_grad():
            recomputed = _attention(*leaves, *options)
        # No query sees a key, or some input is not reached (cut key columns): zero gradients.
        grads = ((None,) * 3 if not recomputed.requires_grad
                 else torch.autograd.grad(recomputed, leaves, dout, allow_unused=True))
        grads = tuple(torch.zeros_like(t) if g is None else g for g, t in zip(grads, (q, k, v)))
    else:
        grads = _closed_form_grads(dout, q, k, v, *options)
    return tuple(g.contiguous() for g in grads)


def _closed_form_grads(dout, q, k, v, key_padding_mask, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
                       max_seqlen_k, causal, scale, dropout_p, seed):
    with torch.no_grad():
        if cu_seqlens_q is None:
            return _dense_grads(dout, q, k, v, key_padding_mask, causal, scale, dropout_p, seed)
        varlen = _Varlen(q, k, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, causal)
        q_padded, k_padded = varlen.pad_q(q), varlen.pad_k(k)
        padded = attention_grads(varlen.pad_q(dout), q_padded, k_padded, varlen.pad_k(v),
                                 varlen.visible, _keep_mask(seed, q_padded, k_padded, dropout_p),
                                 dropout_p, scale)
        return varlen.pack_q(padded[0]), varlen.pack_k(padded[1]), varlen.pack_k(padded[2])
