"""GeluFFN: linear -> GELU -> linear through the fused fastattn.ffn op.

`gelu_ffn` is the one place the math lives; the module and the HF blocks both call it (the blocks
with their own weights: BERT's nn.Linear [out, in], GPT2's Conv1D [in, out] transposed as a view).
"""

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
    """fastattn.ffn's `approximate` for an HF activation name, or None when it is not a GELU
    fastattn computes (callables, relu, gelu_fast, ...)."""
    return HF_GELU_APPROXIMATION.get(hidden_act) if isinstance(hidden_act, str) else None


def module_gelu_approximation(activation, hidden_act):
    """gelu_approximation(hidden_act) while `activation` is the module transformers builds for that
    name (ACT2FN), else None: a module swapped in by hand (a ReLU for the GELU) keeps its own math."""
    approximate = gelu_approximation(hidden_act)
    if approximate is None:
        return None
    from transformers.activations import ACT2FN

    return approximate if type(activation) is type(ACT2FN[hidden_act]) else None


def gelu_ffn(x, w1, b1, w2, b2, *, approximate="none", dropout_p=0.0, backend=None):
    """dropout(linear(gelu(linear(x, w1) + b1), w2, b2)), weights in nn.Linear layout [out, in]."""
    return fastattn.ffn(x, w1, b1, w2, b2, approximate=approximate, dropout_p=dropout_p,
                        backend=backend)


class GeluFFN(nn.Module):
    """The transformer feed-forward network: fc2(gelu(fc1(x))). No dropout inside: BERT fuses its
    own with the residual add and LayerNorm; GPT2's block passes it to gelu_ffn."""

    def __init__(self, hidden_size, intermediate_size, *, approximate="none", bias=True,
                 backend=None, device=None, dtype=None):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"fastattn.nn.GeluFFN: approximate must be 'none' or 'tanh', got {approximate!r}")
        if not bias:
            raise ValueError("fastattn.nn.GeluFFN: the fused FFN needs fc1 to have a bias")
        self.fc1 = nn.Linear(hidden_size, intermediate_size, device=device, dtype=dtype)
        self.fc2 = nn.Linear(intermediate_size, hidden_size, device=device, dtype=dtype)
        self.approximate, self.backend = approximate, backend

    def forward(self, x):
        return gelu_ffn(x, self.fc1.weight, self.fc1.bias, self.fc2.weight, self.fc2.bias,
                        approximate=self.approximate, backend=self.backend)

    def extra_repr(self):
        return f"approximate={self.approximate!r}, backend={self.backend}"
