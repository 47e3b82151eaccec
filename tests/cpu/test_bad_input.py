"""Each kind of bad input to layer_norm_residual raises a clear error naming the argument."""

import pytest
import torch

import fastattn


def good(hidden=8):
    x = torch.randn(2, 3, hidden)
    return {"x": x, "residual": torch.randn_like(x), "weight": torch.ones(hidden),
            "bias": torch.zeros(hidden)}


def call(**overrides):
    args = good()
    options = {k: overrides.pop(k) for k in ("eps", "dropout_p", "return_residual", "backend")
               if k in overrides}
    args.update(overrides)
    return fastattn.layer_norm_residual(args["x"], args["residual"], args["weight"], args["bias"],
                                        **options)


CASES = [
    ("x not a tensor", dict(x=[[1.0]]), TypeError, "x must be a torch.Tensor"),
    ("integer x", dict(x=torch.ones(2, 8, dtype=torch.int64)), TypeError, "x must be float32"),
    ("complex x", dict(x=torch.ones(2, 8, dtype=torch.complex64)), TypeError, "x must be float32, float16, bfloat16 or float64, got complex64"),
    ("empty hidden", dict(x=torch.ones(2, 0), residual=None), ValueError, "non-empty last"),
    ("scalar x", dict(x=torch.tensor(1.0), residual=None), ValueError, "non-empty last"),
    ("residual shape", dict(residual=torch.randn(2, 4, 8)), ValueError, r"residual must have shape \[2, 3, 8\], got \[2, 4, 8\]"),
    ("residual dtype", dict(residual=torch.randn(2, 3, 8, dtype=torch.float16)), TypeError, "residual must have the dtype of x"),
    ("residual not a tensor", dict(residual=3.0), TypeError, "residual must be a torch.Tensor"),
    ("weight shape", dict(weight=torch.ones(7)), ValueError, r"weight must have shape \[8\], got \[7\]"),
    ("bias 2D", dict(bias=torch.zeros(1, 8)), ValueError, r"bias must have shape \[8\]"),
    ("weight missing", dict(weight=None), TypeError, "weight must be a torch.Tensor, got NoneType"),
    ("bias integer", dict(bias=torch.zeros(8, dtype=torch.int32)), TypeError, "bias must be float32"),
    ("eps negative", dict(eps=-1e-5), ValueError, "eps must be >= 0"),
    ("eps nan", dict(eps=float("nan")), ValueError, "eps must be >= 0"),
    ("eps string", dict(eps="1e-5"), TypeError, "eps must be a real number"),
    ("dropout_p above 1", dict(dropout_p=1.5), ValueError, r"dropout_p must be >= 0.0 and <= 1.0, got 1.5"),
    ("dropout_p negative", dict(dropout_p=-0.1), ValueError, "dropout_p must be >= 0.0"),
    ("return_residual not bool", dict(return_residual=1), TypeError, "return_residual must be True or False"),
    ("backend unknown", dict(backend="fast"), ValueError, "unknown backend 'fast'"),
]


@pytest.mark.parametrize("overrides,error,message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_named_error(overrides, error, message):
    with pytest.raises(error, match=message):
        call(**overrides)


def test_mixed_devices_name_both_tensors():
    x = torch.randn(2, 8)
    meta_weight = torch.ones(8, device="meta")
    with pytest.raises(ValueError, match="weight is on meta but x is on cpu"):
        fastattn.layer_norm_residual(x, None, meta_weight, torch.zeros(8))


def test_weight_in_another_float_dtype_is_cast_not_rejected():
    args = good()
    y = fastattn.layer_norm_residual(args["x"].half(), args["residual"].half(), args["weight"],
                                     args["bias"].double().float())
    assert y.dtype == torch.float16


def test_zero_rows_give_empty_outputs_and_zero_weight_grads():
    weight = torch.ones(8, requires_grad=True)
    x = torch.randn(0, 8, requires_grad=True)
    y = fastattn.layer_norm_residual(x, None, weight, torch.zeros(8))
    assert y.shape == (0, 8)
    y.sum().backward()
    assert torch.equal(weight.grad, torch.zeros(8))
