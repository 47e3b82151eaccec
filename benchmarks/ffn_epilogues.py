"""Which of cuBLASLt's bias-gradient epilogues pay off in the cuda FFN's backward, on this GPU.

    python -m benchmarks.ffn_epilogues            (a CUDA GPU and the extension built)

An H100 profile of GPT2's training step (2026-11-26) showed, beside the FFN backward's GEMMs, a
cuBLASLt epilogue kernel (epilogue::impl::globalKernel) taking 185 us a layer: more than the
element-wise work it saves. It comes from DGELU_BGRAD (dA and db1 in the dH GEMM) or BGRADB (db2
in the dW2 GEMM). This times the cuda backend's FFN forward + backward on GPT2's and BERT's
shapes (8192 tokens, 768 -> 3072 -> 768, bfloat16) with each epilogue on and off
(fastattn.backends.cuda_ffn.DGELU_BGRAD_DTYPES, BGRADB_DTYPES), against eager PyTorch; off means
a plain GEMM and our bias_gelu backward kernel (DGELU_BGRAD) or dY's column sums (BGRADB).
"""

import itertools

import torch
import torch.nn.functional as F

import fastattn
from benchmarks.timing import time_fn
from fastattn import _extension
from fastattn.backends import cuda_ffn

TOKENS, WIDTH, HIDDEN = 8192, 768, 3072
DTYPE = torch.bfloat16


def _inputs(device):
    g = torch.Generator(device=device).manual_seed(0)

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, device=device) * scale).to(DTYPE).requires_grad_()

    return (randn(TOKENS, WIDTH), randn(HIDDEN, WIDTH, scale=WIDTH ** -0.5), randn(HIDDEN),
            randn(WIDTH, HIDDEN, scale=HIDDEN ** -0.5), randn(WIDTH))


def _step(ffn, inputs, dy):
    def run():
        out = ffn(*inputs)
        torch.autograd.grad(out, inputs, dy)
    return run


def _fastattn_ffn(approximate):
    return lambda x, w1, b1, w2, b2: fastattn.ffn(x, w1, b1, w2, b2, approximate=approximate,
                                                  backend="cuda")


def _eager_ffn(approximate):
    return lambda x, w1, b1, w2, b2: F.linear(F.gelu(F.linear(x, w1, b1), approximate=approximate),
                                              w2, b2)


def main():
    if not torch.cuda.is_available():
        raise SystemExit("ffn_epilogues: needs a CUDA GPU")
    _extension.require()
    device = torch.device("cuda")
    inputs = _inputs(device)
    dy = torch.randn(TOKENS, WIDTH, device=device).to(DTYPE)
    print(f"device: {torch.cuda.get_device_name()}, {DTYPE}, {TOKENS}x{WIDTH}->{HIDDEN}, "
          "forward + backward, ms (p50)")
    for approximate in ("tanh", "none"):
        p50 = time_fn(_step(_eager_ffn(approximate), inputs, dy), device)[1]
        print(f"gelu={approximate:5}  eager                                {p50:.4f}")
        for dgelu_bgrad, bgradb in itertools.product((True, False), repeat=2):
            if approximate == "none" and dgelu_bgrad:
                continue  # the erf form never takes cuBLASLt's (tanh) GELU epilogues
            cuda_ffn.DGELU_BGRAD_DTYPES = (DTYPE,) if dgelu_bgrad else ()
            cuda_ffn.BGRADB_DTYPES = (DTYPE,) if bgradb else ()
            p50 = time_fn(_step(_fastattn_ffn(approximate), inputs, dy), device)[1]
            print(f"gelu={approximate:5}  cuda dgelu_bgrad={'on ' if dgelu_bgrad else 'off'} "
                  f"bgradb={'on ' if bgradb else 'off'}   {p50:.4f}", flush=True)


if __name__ == "__main__":
    main()
