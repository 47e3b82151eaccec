"""The output projection onto a vocabulary whose size is not a multiple of 8, run on padded rows.

GPT2's LM head projects onto 50257 tokens and BERT's MLM decoder onto 30522. With a row length
that is not a multiple of 8 elements (16 bytes in 16-bit), cuBLAS cannot use its fast Hopper and
Ampere kernels for the logits GEMM nor for the two GEMMs of its backward: on an H100 (2026-11-26
profile of the GPT2 training step, 8x1024 tokens, bf16) they ran an sm75 CUTLASS fallback at
6.7 + 4.5 + 4.3 ms, about 95 TFLOP/s, a third of the step's device time.

Padding the weight (and bias) with zero rows up to a multiple of 8 makes every operand aligned; the
logits come back as a view of the first `out_features` columns (row stride the padded width),
which the loss and generation read like any logits. The padded weight is a fresh copy per call (its
gradient flows back through the pad), so training, tied embeddings and weight updates behave as
before. Only CUDA tensors take the padded path (on the CPU alignment buys nothing), and only calls
of at least PAD_MIN_ROWS tokens: the copy reads and writes the weight once, while a call of few
tokens (a generation step) is a weight-read-bound GEMV whatever the alignment. The GEMM turns
compute-bound near rows = (tensor FLOP/s) / (bytes/s) ~ 200 on an H100 (about 600 TFLOP/s
against 3 TB/s), so 256 rows and more pad.
"""

import torch.nn.functional as F
from torch import nn

from . import adoption

ALIGN_ROWS = 8
PADDED_DEVICE_TYPES = ("cuda",)
PAD_MIN_ROWS = 256


def needs_padding(module):
    """True for an exact nn.Linear onto a vocabulary that is not a multiple of ALIGN_ROWS."""
    return type(module) is nn.Linear and module.out_features % ALIGN_ROWS != 0


class VocabProjection(nn.Linear):
    """nn.Linear whose CUDA calls run with the output rows padded to a multiple of ALIGN_ROWS."""

    @classmethod
    def adopt(cls, linear):
        return adoption.swap_class(linear, cls)

    def release(self):
        return adoption.restore_class(self)

    def forward(self, x):
        pad = -self.out_features % ALIGN_ROWS
        rows = x.numel() // max(1, x.shape[-1])
        if pad == 0 or x.device.type not in PADDED_DEVICE_TYPES or rows < PAD_MIN_ROWS:
            return super().forward(x)
        weight = F.pad(self.weight, (0, 0, 0, pad))
        bias = None if self.bias is None else F.pad(self.bias, (0, pad))
        return F.linear(x, weight, bias)[..., :self.out_features]


def adopt_output_projection(model):
    """Pad the model's output embedding (LM head / MLM decoder) where its vocabulary needs it."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is not None and needs_padding(head):  # an adopted head is no longer exactly nn.Linear
        VocabProjection.adopt(head)
    return head

