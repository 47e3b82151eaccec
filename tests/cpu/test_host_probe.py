"""benchmarks/host_probe.py: the host's speed and load, printed beside a GPU run's host-bound
steps."""

import torch

from benchmarks import host_probe


def test_probes_time_each_kind_of_host_work():
    results = host_probe.probes(torch.device("cpu"), calls=20)
    assert set(results) == {"python loop of 100", "torch.empty on cpu", "tiny add on cpu"}
    assert all(0 < us < 10_000 for us in results.values()), results


def test_report_names_the_load_and_this_process(capsys):
    host_probe.main(["--label", "before the bench", "--calls", "5"])
    out = capsys.readouterr().out
    assert "host probe before the bench" in out
    assert "load average" in out
    assert "pytest" in out or "python" in out  # this process, in the ps listing
