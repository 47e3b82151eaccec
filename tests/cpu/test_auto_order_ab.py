"""benchmarks/auto_order_ab.py (a GPU script): its argument checks and step timing, on CPU."""

import pytest
import torch

from benchmarks import auto_order_ab


def test_unknown_backend_in_an_order_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        auto_order_ab.main(["--order", "triton,cudnn"])
    assert exit_info.value.code == 2 and "cudnn" in capsys.readouterr().err


def test_needs_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: the script would run")
    with pytest.raises(SystemExit, match="needs a CUDA GPU"):
        auto_order_ab.main([])


def test_time_step_gives_host_and_whole_step_medians():
    calls = []
    host, whole = auto_order_ab.time_step(lambda: calls.append(sum(range(1000))),
                                          torch.device("cpu"), 5)
    assert len(calls) == 3 + 5 and 0 < host <= whole


def test_each_order_applies_to_every_call_and_the_dispatch_table_is_restored(monkeypatch, capsys):
    """While an order is timed, the op's size band (LayerNorm's small calls on cuda) is lifted, so
    the order decides every call; afterwards the table is as it was."""
    from fastattn import _dispatch

    seen = []

    def fake_step(case, impl, device):
        seen.append((case, _dispatch.auto_order("layer_norm_residual", 128)))
        return lambda: None

    monkeypatch.setattr(auto_order_ab.devices, "bench_device", lambda: torch.device("cuda"))
    monkeypatch.setattr(auto_order_ab.devices, "device_slug", lambda device: "fake-gpu")
    monkeypatch.setattr(auto_order_ab, "make_step", fake_step)
    monkeypatch.setattr(auto_order_ab, "time_step", lambda step, device, steps: (1.0, 2.0))
    band = _dispatch.AUTO_ORDER_UP_TO_SIZE["layer_norm_residual"]
    order = _dispatch.AUTO_ORDER["layer_norm_residual"]
    auto_order_ab.main(["--case", "bert-latency"])
    assert seen == [("bert-latency", ("triton", "cuda", "torch")),
                    ("bert-latency", ("cuda", "triton", "torch"))]
    assert _dispatch.AUTO_ORDER_UP_TO_SIZE["layer_norm_residual"] == band
    assert _dispatch.AUTO_ORDER["layer_norm_residual"] == order
    assert "band (rows <= 2048) lifted" in capsys.readouterr().out
