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
