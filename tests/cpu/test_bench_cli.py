"""`python -m fastattn bench` finds the checkout's suites, and says clearly what it cannot run."""

import argparse
import os
import subprocess
import sys

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


def test_the_suites_collect_as_the_bench_runs_them():
    """The suites' pytest run, from the checkout: every suite imports (the model suite imports
    transformers, which imports the PyPI package `kernels` when installed; pytest's prepend import
    mode puts the checkout, holding our kernels/ folder, first on sys.path for each module of the
    benchmarks package)."""
    root = bench.find_checkout()
    files = [os.path.join("benchmarks", name) for name in sorted(set(bench.SUITES.values()))
             if os.path.exists(os.path.join(root, "benchmarks", name))]
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", *files], cwd=root, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
