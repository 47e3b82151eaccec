"""The cuda attention backend where no GPU is: asking for it on CPU tensors raises
BackendUnavailableError saying why, and its fake function (what torch.compile traces with) gives the
shapes the real kernels return, the saved probabilities included: of one shape whichever path a
call takes (the fused decode kernels return an unwritten buffer of it), since the fake function
cannot tell the paths apart where Sq is a dynamic size."""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import fastattn
from fastattn.ops.attention import attention_fwd, attention_bwd


def test_cpu_tensors_raise_a_clear_error():
    q = torch.randn(1, 2, 3, 16)
    with pytest.raises(fastattn.BackendUnavailableError, match="cuda.*needs CUDA tensors"):
        fastattn.attention(q, q, q, backend="cuda")


# (q shape, k shape, dropout_p, the saved tensor's shape).
DENSE_CASES = {
    "dense": ((2, 4, 17, 32), (2, 2, 5, 32), 0.0, (2, 4, 17, 5)),
    "decode": ((2, 4, 7, 32), (2, 2, 5, 32), 0.0, (2, 4, 7, 5)),
    "decode with dropout": ((2, 4, 7, 32), (2, 2, 5, 32), 0.1, (2, 4, 7, 5)),
    "decode, head dim 12": ((2, 4, 1, 12), (2, 2, 5, 12), 0.0, (2, 4, 1, 5)),
}


@pytest.mark.parametrize("case", [*DENSE_CASES, "varlen"])
def test_fake_function_shapes(case):
    with FakeTensorMode():
        if case == "varlen":
            q, k = torch.empty(12, 4, 32, dtype=torch.float16), torch.empty(9, 2, 32, dtype=torch.float16)
            cu_q, cu_k = torch.empty(4, dtype=torch.int32), torch.empty(4, dtype=torch.int32)
            sizes, saved_shape, dropout_p = (7, 5), (3, 4, 7, 5), 0.0
        else:
            q_shape, k_shape, dropout_p, saved_shape = DENSE_CASES[case]
            q = torch.empty(q_shape, dtype=torch.float16)
            k = torch.empty(k_shape, dtype=torch.float16)
            cu_q = cu_k = None
            sizes = (q_shape[2], k_shape[2])
        seed = torch.tensor([1]) if dropout_p else None
        out, saved = attention_fwd(q, k, k, None, cu_q, cu_k, *sizes, True, 0.5, dropout_p, seed,
                                   "cuda")
        grads = attention_bwd(out, q, k, k, out, saved, None, cu_q, cu_k, *sizes, True, 0.5,
                              dropout_p, seed, "cuda")
    assert out.shape == q.shape and out.dtype == q.dtype
    assert tuple(saved.shape) == saved_shape and saved.dtype == q.dtype
    assert [g.shape for g in grads] == [q.shape, k.shape, k.shape]
