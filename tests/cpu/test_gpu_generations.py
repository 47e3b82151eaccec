"""GPUs other than the A100 and H100 the tiles were written for: which tile tables a GPU takes
(fastattn.backends._device.tile_arch), which GPUs the triton and cuda backends refuse (and the
automatic choice then skips), and which GPUs an extension build has kernels for.

No GPU here: the CUDA device queries are replaced by fakes describing real parts."""

import importlib.util
import os
from types import SimpleNamespace

import pytest
import torch

import fastattn
from fastattn import _dispatch, _extension
from fastattn.backends import _device
from fastattn.kernels import attention_settings, ffn_settings

# name, compute capability, cudaDevAttrMaxSharedMemoryPerBlockOptin (bytes)
GPUS = [
    ("T4", (7, 5), 64 * 1024),
    ("A100", (8, 0), 163 * 1024),
    ("RTX 3090 / A10", (8, 6), 99 * 1024),
    ("Jetson Orin", (8, 7), 163 * 1024),
    ("RTX 4090 / L4 / L40S", (8, 9), 99 * 1024),
    ("H100 / H200", (9, 0), 227 * 1024),
    ("B200", (10, 0), 227 * 1024),
    ("RTX 5090 / RTX PRO 6000", (12, 0), 99 * 1024),
    ("DGX Spark", (12, 1), 99 * 1024),
]
SUPPORTED = [gpu for gpu in GPUS if gpu[1] >= _dispatch.MIN_COMPUTE_CAPABILITY]


def _compile_tier_limits():
    """Shared memory the compile tier allows each table's tiles (tests/compile/triton_aot.py)."""
    path = os.path.join(os.path.dirname(__file__), os.pardir, "compile", "triton_aot.py")
    spec = importlib.util.spec_from_file_location("triton_aot", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MAX_SHARED_BYTES


@pytest.fixture
def fake_gpu(monkeypatch):
    """Installs a fake CUDA device 0 of the given (capability, shared bytes) and an extension
    built for FASTATTN_CUDA_ARCHS "80;90"; the cached device answers are dropped before and
    after."""
    caches = (_device._cuda_tile_arch, _dispatch._why_gpu_cannot_run,
              _dispatch._why_backend_cannot_run)

    def install(name, capability, shared, cuda_archs="80;90"):
        properties = SimpleNamespace(major=capability[0], minor=capability[1],
                                     shared_memory_per_block_optin=shared)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: properties)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda index: name)
        monkeypatch.setattr(_extension, "load",
                            lambda: (SimpleNamespace(cuda_archs=cuda_archs), None))
        for cache in caches:
            cache.cache_clear()

    yield install
    for cache in caches:
        cache.cache_clear()


def test_tile_archs_are_the_tables_archs():
    assert _device.TILE_ARCHS == attention_settings.ARCHS == ffn_settings.ARCHS


@pytest.mark.parametrize("name,capability,shared", SUPPORTED, ids=[g[0] for g in SUPPORTED])
def test_every_supported_gpu_takes_tiles_that_fit_its_shared_memory(name, capability, shared):
    """The compile tier bounds each table's shared memory; the table a GPU takes must be one whose
    bound the GPU meets (a Hopper table's 112-136 KB tiles on a 99 KB RTX 5090 would not launch)."""
    arch = _device.tile_arch_for(capability[0], shared)
    assert _compile_tier_limits()[arch] <= shared, (name, arch)


def test_hopper_class_gpus_take_the_hopper_tables():
    assert _device.tile_arch_for(9, 227 * 1024) == 90
    assert _device.tile_arch_for(10, 227 * 1024) == 90
    assert _device.tile_arch_for(12, 99 * 1024) == 80
    assert _device.tile_arch_for(8, 163 * 1024) == 80


@pytest.mark.parametrize("name,capability,shared,expected", [
    ("H100", (9, 0), 227 * 1024, 90), ("RTX 5090", (12, 0), 99 * 1024, 80),
    ("L40S", (8, 9), 99 * 1024, 80)])
def test_launchers_ask_the_device_for_its_tiles(fake_gpu, name, capability, shared, expected):
    fake_gpu(name, capability, shared)
    assert _device.tile_arch(torch.device("cuda", 0)) == expected


def test_interpreter_arch_is_checked(monkeypatch):
    monkeypatch.setenv(_device.INTERPRET_ARCH_VARIABLE, "120")
    with pytest.raises(ValueError, match="FASTATTN_INTERPRET_ARCH='120': expected one of 80, 90"):
        _device.tile_arch(torch.device("cpu"))


def test_gpus_before_ampere_run_the_torch_backend(fake_gpu):
    fake_gpu("Tesla T4", (7, 5), 64 * 1024)
    gpu = torch.device("cuda", 0)
    for name in ("triton", "cuda"):
        assert "compute capability 8.0 or newer, and Tesla T4 is 7.5" in (
            _dispatch.why_backend_cannot_run(name, gpu))
    assert _dispatch.why_backend_cannot_run("torch", gpu) is None
    assert _dispatch.resolve_backend("layer_norm_residual", gpu) == "torch"
    with pytest.raises(fastattn.BackendUnavailableError, match="Tesla T4 is 7.5"):
        _dispatch.resolve_backend("layer_norm_residual", gpu, requested="triton")


def test_an_extension_without_kernels_for_the_gpu_is_skipped(fake_gpu):
    """`make gpu` builds for the machine's arch only; that build copied to an A100 has nothing."""
    fake_gpu("A100", (8, 0), 163 * 1024, cuda_archs="90")
    gpu = torch.device("cuda", 0)
    reason = _dispatch.why_backend_cannot_run("cuda", gpu)
    assert "built for sm_90 and has no kernels for this GPU (sm_80)" in reason
    assert 'FASTATTN_CUDA_ARCHS="80"' in reason
    assert _dispatch.why_backend_cannot_run("triton", gpu) is None
    assert _dispatch.resolve_backend("ffn", gpu) != "cuda"


@pytest.mark.parametrize("archs,capability,runs", [
    ("80;90", (8, 0), True), ("80;90", (8, 9), True), ("80;90", (9, 0), True),
    ("80;90", (12, 0), True),   # PTX of compute_90, compiled by the driver
    ("80;90", (7, 5), False), ("90", (8, 0), False), ("86", (8, 0), False), ("86", (8, 9), True),
    ("90a", (9, 0), True), ("90a", (10, 0), False), ("80;90a", (12, 0), False),
    ("unknown", (7, 0), True)])
def test_which_gpus_an_extension_build_runs_on(archs, capability, runs):
    assert _extension.runs_on(archs, *capability) is runs
