"""fastattn.backends._device.on_inputs_device: Triton launches on the current CUDA device, so every
fused op (and the Triton cross-entropy) runs with its inputs' GPU made current. No GPU here: the
device queries and the tensors' device are faked; tests/gpu/test_second_gpu.py runs it for real
where a machine has two GPUs."""

import pytest
import torch

from fastattn.backends import _device, triton_cross_entropy
from fastattn.ops import attention, bias_gelu, ffn, layer_norm_residual, masked_softmax
from fastattn.ops._fused_op import FusedOp


@pytest.fixture
def gpus(monkeypatch):
    """Two fake GPUs, cuda:0 current, every tensor on cuda:1. Yields the current-device log."""
    state = {"current": 0, "switches": []}

    class FakeDeviceContext:
        def __init__(self, device):
            self.index = torch.device(device).index

        def __enter__(self):
            state["switches"].append(self.index)
            self.previous, state["current"] = state["current"], self.index

        def __exit__(self, *exc):
            state["current"] = self.previous

    monkeypatch.setattr(torch.cuda, "current_device", lambda: state["current"])
    monkeypatch.setattr(torch.cuda, "device", FakeDeviceContext)
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    monkeypatch.setattr(torch.Tensor, "device", property(lambda self: torch.device("cuda", 1)))
    return state


def test_runs_on_the_first_tensors_device_and_restores_the_current_one(gpus):
    seen = []
    run = _device.on_inputs_device(lambda *args: seen.append(gpus["current"]) or "out")
    assert run(None, torch.ones(2), 3) == "out"
    assert seen == [1] and gpus["switches"] == [1] and gpus["current"] == 0


def test_no_switch_when_the_inputs_device_is_current(gpus):
    gpus["current"] = 1
    seen = []
    _device.on_inputs_device(lambda *args: seen.append(gpus["current"]))(torch.ones(2))
    assert seen == [1] and gpus["switches"] == []


def test_cpu_tensors_are_left_alone(monkeypatch):
    monkeypatch.setattr(torch.cuda, "current_device",
                        lambda: pytest.fail("asked for the current CUDA device for CPU tensors"))
    assert _device.on_inputs_device(lambda x: x + 1)(torch.ones(2)).tolist() == [2.0, 2.0]


def test_fused_ops_run_on_their_inputs_device_called_eagerly_or_as_custom_ops(gpus):
    """Every fastattn op is a FusedOp: its implementation runs guarded on both of its paths."""
    seen = []

    def probe(x: torch.Tensor) -> torch.Tensor:
        seen.append(gpus["current"])
        return x.clone()

    op = FusedOp("fastattn_tests::inputs_device_probe", probe)
    op(torch.ones(2))
    op.custom_op(torch.ones(2))
    assert seen == [1, 1] and gpus["current"] == 0
    assert all(isinstance(entry, FusedOp) for entry in (
        attention.attention_fwd, attention.attention_bwd, bias_gelu.bias_gelu_fwd,
        bias_gelu.bias_gelu_bwd, ffn.ffn_fwd, ffn.ffn_bwd,
        layer_norm_residual.layer_norm_residual_fwd, layer_norm_residual.layer_norm_residual_bwd,
        masked_softmax.masked_softmax_fwd, masked_softmax.masked_softmax_bwd))


def test_cross_entropy_launchers_are_guarded(gpus, monkeypatch):
    seen = []
    monkeypatch.setattr(triton_cross_entropy._alloc, "empty",
                        lambda *args, **kwargs: seen.append(gpus["current"]) or torch.empty(0))
    logits = torch.ones(0, 5)
    triton_cross_entropy.cross_entropy_fwd(logits, torch.ones(0, dtype=torch.long), -100)
    assert seen == [1, 1] and gpus["current"] == 0
