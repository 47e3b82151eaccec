"""The cuda attention backend where no GPU is: asking for it on CPU tensors raises
BackendUnavailableError saying why, and its fake function (what torch.compile traces with) gives the
shapes the real kernels return, the saved probabilities included."""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import fastattn
from fastattn.ops.attention import attention_fwd, attention_bwd


def test_cpu_tensors_raise_a_clear_error():
    q = torch.randn(1, 2, 3, 16)
    with pytest.raises(fastattn.BackendUnavailableError, match="cuda.*needs CUDA tensors"):
        fastattn.attention(q, q, q, backend="cuda")


@pytest.mark.parametrize("varlen", [False, True], ids=["dense", "varlen"])
def test_fake_function_shapes(varlen):
    with FakeTensorMode():
        if varlen:
            q, k = torch.empty(12, 4, 32, dtype=torch.float16), torch.empty(9, 2, 32, dtype=torch.float16)
            cu_q, cu_k = torch.empty(4, dtype=torch.int32), torch.empty(4, dtype=torch.int32)
            sizes, probs_shape = (7, 5), (3, 4, 7, 5)
        else:
            q, k = torch.empty(2, 4, 7, 32, dtype=torch.float16), torch.empty(2, 2, 5, 32, dtype=torch.float16)
            cu_q = cu_k = None
            sizes, probs_shape = (7, 5), (2, 4, 7, 5)
        out, probs = attention_fwd(q, k, k, None, cu_q, cu_k, *sizes, True, 0.5, 0.0, None, "cuda")
        grads = attention_bwd(out, q, k, k, out, probs, None, cu_q, cu_k, *sizes, True, 0.5, 0.0,
                              None, "cuda")
    assert out.shape == q.shape and out.dtype == q.dtype
    assert tuple(probs.shape) == probs_shape and probs.dtype == q.dtype
    assert [g.shape for g in grads] == [q.shape, k.shape, k.shape]
