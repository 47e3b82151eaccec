"""The fused ops under CPU autocast on the triton backend (tests/autocast_cases.py), in float16:
the interpreter cannot compute in bfloat16 (DESIGN §5)."""

import pytest
import torch

import autocast_cases


@pytest.mark.parametrize("case", list(autocast_cases.cases("triton", torch.float16)))
def test_op_under_autocast_computes_in_its_policys_dtype(case):
    autocast_cases.check_op_under_autocast(case, "triton", torch.float16)
