"""Each kind of bad input to fastattn.ffn raises a clear error naming the argument."""

import pytest
import torch

import fastattn


def call(**overrides):
    args = {"x": torch.randn(2, 3, 8), "w1": torch.randn(12, 8), "b1": torch.randn(12),
            "w2": torch.randn(5, 12), "b2": torch.randn(5)}
    options = {k: overrides.pop(k) for k in ("approximate", "dropout_p", "backend") if k in overrides}
    args.update(overrides)
    return fastattn.ffn(args["x"], args["w1"], args["b1"], args["w2"], args["b2"], **options)


CASES = [
    ("x not a tensor", dict(x=[[1.0]]), TypeError, "x must be a torch.Tensor"),
    ("integer x", dict(x=torch.ones(2, 8, dtype=torch.int64)), TypeError, "x must be float32"),
    ("complex x", dict(x=torch.ones(2, 8, dtype=torch.complex64)), TypeError, "got complex64"),
    ("scalar x", dict(x=torch.tensor(1.0)), ValueError, "x must have a non-empty last"),
    ("empty feature dim", dict(x=torch.ones(2, 0)), ValueError, "x must have a non-empty last"),
    ("w1 missing", dict(w1=None), TypeError, "w1 must be a torch.Tensor, got NoneType"),
    ("w1 dtype", dict(w1=torch.randn(12, 8, dtype=torch.float16)), TypeError, "w1 must have the dtype of x"),
    ("w1 in features", dict(w1=torch.randn(12, 7)), ValueError, r"w1 must be \[hidden, 8\].*got shape \[12, 7\]"),
    ("w1 1D", dict(w1=torch.randn(8)), ValueError, r"w1 must be \[hidden, 8\]"),
    ("w1 no rows", dict(w1=torch.randn(0, 8)), ValueError, r"w1 must be \[hidden, 8\]"),
    ("b1 shape", dict(b1=torch.randn(11)), ValueError, r"b1 must have shape \[12\], got \[11\]"),
    ("b1 integer", dict(b1=torch.zeros(12, dtype=torch.int32)), TypeError, "b1 must be float32"),
    ("w2 in features", dict(w2=torch.randn(5, 8)), ValueError, r"w2 must be \[out, 12\].*got shape \[5, 8\]"),
    ("w2 transposed", dict(w2=torch.randn(12, 5)), ValueError, r"w2 must be \[out, 12\]"),
    ("w2 dtype", dict(w2=torch.randn(5, 12, dtype=torch.bfloat16)), TypeError, "w2 must have the dtype of x"),
    ("b2 shape", dict(b2=torch.randn(1, 5)), ValueError, r"b2 must have shape \[5\]"),
    ("b2 missing", dict(b2=None), TypeError, "b2 must be a torch.Tensor"),
    ("approximate unknown", dict(approximate="erf"), ValueError, "approximate must be one of 'none', 'tanh'"),
    ("approximate not a string", dict(approximate=None), TypeError, "approximate must be a string"),
    ("dropout_p above 1", dict(dropout_p=1.5), ValueError, r"dropout_p must be >= 0.0 and <= 1.0, got 1.5"),
    ("dropout_p string", dict(dropout_p="0.1"), TypeError, "dropout_p must be a real number"),
    ("backend unknown", dict(backend="fast"), ValueError, "unknown backend 'fast'"),
]


@pytest.mark.parametrize("overrides,error,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_named_error(overrides, error, message):
    with pytest.raises(error, match=message):
        call(**overrides)


def test_mixed_devices_name_both_tensors():
    with pytest.raises(ValueError, match="w2 is on meta but x is on cpu"):
        call(w2=torch.randn(5, 12, device="meta"))


@pytest.mark.parametrize("name", ["triton", "cuda"])
def test_unavailable_backend_says_why(name):
    """CPU tensors: the cuda backend never runs them; triton only under the interpreter."""
    if name == "triton" and fastattn.available_backends()["triton"]["available"]:
        pytest.skip("the Triton interpreter is on: triton runs CPU tensors")
    with pytest.raises(fastattn.BackendUnavailableError, match=f"backend '{name}'"):
        call(backend=name)
