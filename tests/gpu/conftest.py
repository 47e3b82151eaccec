"""gpu tier: the same numerics on real CUDA tensors, every backend, every dtype (bfloat16 too).

Runs only where torch sees a CUDA GPU (`make gpu`); elsewhere every test here is skipped with the
reason shown in pytest's summary."""

import pytest
import torch

import fastattn

NO_GPU_REASON = "no CUDA GPU: the gpu tier runs where torch.cuda.is_available() (see `make gpu`)"
BACKENDS = ["triton", "cuda", "torch"]


def pytest_collection_modifyitems(config, items):
    here = str(config.rootpath / "tests" / "gpu")
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.gpu)
            if not torch.cuda.is_available():
                item.add_marker(pytest.mark.skip(reason=NO_GPU_REASON))


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS)
    if "dtype" in metafunc.fixturenames:
        metafunc.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16],
                             ids=["fp32", "fp16", "bf16"])


@pytest.fixture
def cuda_backend(device):
    """For files that test the cuda backend alone: skips, saying why, where it cannot run."""
    status = fastattn.available_backends()["cuda"]
    if not status["available"]:
        pytest.skip(f"cuda backend unavailable: {status['detail']}")


@pytest.fixture
def device(request):
    backend = request.node.callspec.params.get("backend") if hasattr(request.node, "callspec") else None
    if backend is not None and torch.cuda.is_available():
        status = fastattn.available_backends()[backend]
        if not status["available"]:
            pytest.skip(f"backend {backend} unavailable on this GPU machine: {status['detail']}")
    return torch.device("cuda")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A call that asks for a backend switched off for this configuration (e.g. triton attention
    tiles that still spill registers, kernels/attention_settings.SPILLING) is reported as skipped
    with the dispatcher's reason, not as a failure: the switch-off itself is tested in the cpu tier."""
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None and call.excinfo.errisinstance(fastattn.BackendUnavailableError) \
            and "switched off" in str(call.excinfo.value):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0,
                           f"Skipped: {call.excinfo.value}")
