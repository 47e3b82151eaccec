"""`python -m fastattn bench` finds the checkout's suites, and says clearly what it cannot run."""

import argparse

from fastattn import bench
from fastattn.__main__ import main


def test_suites_not_written_yet_are_reported_not_failed(capsys, monkeypatch):
    monkeypatch.setitem(bench.SUITES, "ffn", "test_not_written_yet.py")
    assert main(["bench", "--suite", "ffn"]) == 0
    out = capsys.readouterr().out
    assert "benchmarks/test_not_written_yet.py does not exist yet" in out
    assert "no suite to run" in out


def test_without_a_checkout_it_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "__file__", str(tmp_path / "site-packages" / "fastattn" / "bench.py"))
    monkeypatch.chdir(tmp_path)
    assert bench.find_checkout() is None
    assert bench.main(argparse.Namespace()) == 2
    assert "needs the fastattn source checkout" in capsys.readouterr().err

