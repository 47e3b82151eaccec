"""cpu tier: the torch backend on CPU tensors, in every dtype."""

import pytest
import torch


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", ["torch"])
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16],
                             ids=["fp32", "fp16", "bf16"])


@pytest.fixture
def device():
    return torch.device("cpu")
