"""The fast accepts in front of the argument checks of layer_norm_residual, ffn and attention.

Each op judges a usual call in one expression (_usual_call / _usual_dense_call) and runs its full
checks, which name what is wrong, only when that says False. An accept that let a bad call through
would skip the error: every bad-input case of the ops' bad-input tests must be refused by it. And
the calls the patched blocks make must be accepted, or the host time it saves is lost unseen.
"""

import pytest
import torch

import test_attention_api as attention_cases
import test_bad_input as layer_norm_cases
import test_ffn_bad_input as ffn_cases
from fastattn.ops import attention as attention_op
from fastattn.ops import ffn as ffn_op
from fastattn.ops import layer_norm_residual as layer_norm_op

# Options as each public op's defaults pass them on to its checks.
LAYER_NORM_OPTIONS = {"eps": 1e-5, "dropout_p": 0.0, "return_residual": False}
FFN_OPTIONS = {"approximate": "none", "dropout_p": 0.0}
ATTENTION_OPTIONS = {"causal": False, "key_padding_mask": None, "scale": None, "dropout_p": 0.0}


def layer_norm_accepts(**overrides):
    args = {**layer_norm_cases.good(), **LAYER_NORM_OPTIONS, **overrides}
    return layer_norm_op._usual_call(args["x"], args["residual"], args["weight"], args["bias"],
                                     args["eps"], args["dropout_p"], args["return_residual"])


def ffn_accepts(**overrides):
    args = {"x": torch.randn(2, 3, 8), "w1": torch.randn(12, 8), "b1": torch.randn(12),
            "w2": torch.randn(5, 12), "b2": torch.randn(5), **FFN_OPTIONS, **overrides}
    return ffn_op._usual_call(args["x"], args["w1"], args["b1"], args["w2"], args["b2"],
                              args["approximate"], args["dropout_p"])


def attention_accepts(**overrides):
    tensors, options = attention_cases.good(**overrides)
    args = {**tensors, **ATTENTION_OPTIONS, **options}
    return attention_op._usual_dense_call(args["q"], args["k"], args["v"], args["causal"],
                                          args["key_padding_mask"], args["scale"],
                                          args["dropout_p"])


def _bad_cases(cases):
    # The backend cases fail in dispatch, after the checks: not the accepts' business.
    return [pytest.param(c[1], id=c[0]) for c in cases if "backend" not in c[1]]


@pytest.mark.parametrize("overrides", _bad_cases(layer_norm_cases.CASES))
def test_layer_norm_refuses_every_bad_input_case(overrides):
    assert not layer_norm_accepts(**overrides)


@pytest.mark.parametrize("overrides", _bad_cases(ffn_cases.CASES))
def test_ffn_refuses_every_bad_input_case(overrides):
    assert not ffn_accepts(**overrides)


@pytest.mark.parametrize("overrides", _bad_cases(attention_cases.CASES))
def test_attention_refuses_every_bad_input_case(overrides):
    assert not attention_accepts(**overrides)


def test_mixed_devices_are_left_to_the_checks():
    meta = torch.ones(8, device="meta")
    assert not layer_norm_accepts(weight=meta)
    assert not ffn_accepts(b2=torch.randn(5, device="meta"))
    assert not attention_accepts(key_padding_mask=torch.ones(2, 6, dtype=torch.bool, device="meta"))


def test_values_the_checks_take_but_the_accepts_leave_to_them():
    """An int eps or dropout_p, a NaN: the checks decide (and accept the ints)."""
    assert not layer_norm_accepts(eps=0)
    assert not layer_norm_accepts(eps=float("nan"))
    assert not ffn_accepts(dropout_p=0)
    assert not attention_accepts(scale=float("nan"))


def test_the_calls_of_the_patched_blocks_are_accepted():
    # LayerNorm: with and without a residual, returning h, weights in another float dtype, dropout.
    assert layer_norm_accepts()
    assert layer_norm_accepts(residual=None, return_residual=True, dropout_p=0.1)
    assert layer_norm_accepts(weight=torch.ones(8, dtype=torch.float16))
    assert layer_norm_accepts(weight=torch.nn.Parameter(torch.ones(8)))
    # FFN: GPT2's Conv1D weights arrive transposed (views), tanh GELU, dropout.
    assert ffn_accepts(w1=torch.randn(8, 12).t(), w2=torch.randn(12, 5).t(), approximate="tanh",
                       dropout_p=0.1)
    # Attention: a decoding step (causal, one query), a key padding mask, a scale, GQA.
    assert attention_accepts(q=torch.randn(2, 4, 1, 16), causal=True, scale=0.25)
    assert attention_accepts(key_padding_mask=torch.ones(2, 6, dtype=torch.bool), dropout_p=0.1)
