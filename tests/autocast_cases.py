"""Each fused op under torch.autocast (CPU autocast: the cpu tier on the torch backend, the
interpret tier on triton): it computes in the dtype of the policy of the stock ops it replaces
(fastattn/_autocast.py), exactly as the op called with inputs cast by hand, and float32 leaves get
float32 gradients."""

import torch

import fastattn


def _cu(*lengths):
    return torch.tensor(lengths, dtype=torch.int32)


def cases(backend, autocast_dtype):
    """name -> (leaf shapes, op(*leaves), dtype the op computes in under autocast)."""
    return {
        "attention": ([(2, 4, 7, 16)] * 3, lambda q, k, v: fastattn.attention(
            q, k, v, causal=True, backend=backend), autocast_dtype),
        "attention_varlen": ([(9, 4, 16)] * 3, lambda q, k, v: fastattn.attention_varlen(
            q, k, v, _cu(0, 4, 9), _cu(0, 4, 9), 5, 5, backend=backend), autocast_dtype),
        "ffn": ([(5, 32), (48, 32), (48,), (32, 48), (32,)],
                lambda *a: fastattn.ffn(*a, backend=backend), autocast_dtype),
        "layer_norm_residual": ([(5, 32), (5, 32), (32,), (32,)],
                                lambda *a: fastattn.layer_norm_residual(*a, backend=backend),
                                torch.float32),
        "masked_softmax": ([(2, 4, 7, 7)], lambda s: fastattn.masked_softmax(
            s, causal=True, scale=0.5, backend=backend), torch.float32),
    }


def check_op_under_autocast(case, backend, autocast_dtype):
    shapes, op, dtype = cases(backend, autocast_dtype)[case]
    torch.manual_seed(0)
    leaves = [torch.randn(*shape, requires_grad=True) for shape in shapes]
    with torch.autocast("cpu", dtype=autocast_dtype):
        out = op(*leaves)
    expected = op(*(leaf.detach().to(dtype) for leaf in leaves))
    assert out.dtype == dtype
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    out.float().sum().backward()
    assert all(leaf.grad is not None and leaf.grad.dtype == torch.float32 for leaf in leaves)
