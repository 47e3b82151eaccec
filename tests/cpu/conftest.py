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


@pytest.fixture
def facts_kept_as_on_a_gpu(monkeypatch):
    """fastattn._tensor_memo keeps host facts (key bounds, cu_seqlens summaries) on GPU tensors
    only; with this fixture it keeps them on CPU tensors too, so that tests here can check the
    keeping, and the reads it saves, that a GPU run relies on."""
    from fastattn import _tensor_memo

    monkeypatch.setattr(_tensor_memo, "UNKEPT_DEVICE_TYPES", ())
