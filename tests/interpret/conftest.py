"""interpret tier: the Triton kernels on CPU tensors under TRITON_INTERPRET=1, float32 and float16
(the interpreter cannot do bfloat16 arithmetic: triton-lang/triton #11584).

The interpreter is read when @triton.jit runs, so this tier runs in its own pytest process with the
variable set before anything imports fastattn (`make test` does that)."""

import os

import pytest
import torch

if os.environ.get("TRITON_INTERPRET") != "1":
    pytest.exit("tests/interpret needs TRITON_INTERPRET=1 set before pytest starts "
                "(run `make test-interpret`)", returncode=4)


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", ["triton"])
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])


@pytest.fixture
def device():
    return torch.device("cpu")


@pytest.fixture
def count_launches(monkeypatch):
    """count_launches(module, attribute) -> a list that gets the grid of every launch of the Triton
    kernel module.<attribute> (as the launcher reaches it) until the test ends; the kernel runs."""
    def count(module, attribute):
        kernel, grids = getattr(module, attribute), []

        class Counted:
            def __getitem__(self, grid):
                grids.append(grid)
                return kernel[grid]

        monkeypatch.setattr(module, attribute, Counted())
        return grids

    return count
