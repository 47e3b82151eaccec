"""benchmarks/triton_launch_cost.py: Triton's own launcher, run for real on CPU against a fake driver,
costs host time on top of fastattn's wrapper for each kernel (in its own process: it replaces
Triton's active driver)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_reports_the_launcher_share_of_each_wrapper():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-m", "benchmarks.triton_launch_cost", "--calls", "50"],
                         cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout
    rows = [line for line in out.splitlines() if line.startswith(("attention", "layer_norm", "ffn"))]
    assert len(rows) == 3, out
    for row in rows:
        with_launcher, without, per_launch = (float(x) for x in row.split()[-3:])
        assert with_launcher > without > 0 and per_launch > 0, row
