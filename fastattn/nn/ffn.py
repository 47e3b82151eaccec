"""GeluFFN: linear -> GELU -> linear, with the bias add fused into the GELU (fastattn.bias_gelu).

`gelu_ffn` is the one place the math lives; the module and the HF blocks both call it (the blocks
with their own weights: BERT's nn.Linear [out, in], GPT2's Conv1D [in, out] transposed as a view).
"""

import torch.nn.functional as F
from torch import nn

import fastattn

# Hugging Face activation names whose math is exactly torch's GELU: erf ("none") or tanh.
# (gelu_fast and quick_gelu are other formulas: blocks that use them keep their own activation.)
HF_GELU_APPROXIMATION = {
    "gelu": "none",
    "gelu_python": "none",
    "gelu_new": "tanh",
    "gelu_pytorch_tanh": "tanh",
}


def gelu_approximation(hidden_act):
    """fastattn.bias_gelu's `approximate` for an HF activation name, or None when it is not a GELU
    fastattn computes (callables, relu, gelu_fast, ...)."""
    return HF_GELU_APPROXIMATION.get(hidden_act) if isinstance(hidden_act, str) else None


def gelu_ffn(x, w1, b1, w2, b2, *, approximate="none", backend=None):
    """linear(gelu(linear(x, w1) + b1), w2, b2), weights in nn.Linear layout [out, in]."""
    hidden = fastattn.bias_gelu(F.linear(x, w1), b1, approximate=approximate, backend=backend)
    return F.linear(hidden, w2, b2)


class GeluFFN(nn.Module):
    """The transformer feed-forward network: fc2(gelu(fc1(x))). No dropout inside: BERT and GPT2
    put theirs after fc2, where the caller fuses it with the residual add."""

    def __init__(self, hidden_size, intermediate_size, *, approximate="none", bias=True,
                 backend=None, device=None, dtype=None):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"fastattn.nn.GeluFFN: approximate must be 'none' or 'tanh', got {approximate!r}")
        if not bias:
            raise ValueError("fastattn.nn.GeluFFN: the fused bias+GELU needs fc1 to have a bias")
        self.fc1 = nn.Linear(hidden_size, intermediate_size, device=device, dtype=dtype)
        self.fc2 = nn.Linear(intermediate_size, hidden_size, device=device, dtype=dtype)
        self.approximate, self.backend = approximate, backend

    def forward(self, x):
        return gelu_ffn(x, self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias,
                        approximate=self.approximate, backend=self.backend)

    def extra_repr(self):
        return f"approximate={self.approximate!r}, backend={self.backend}"
