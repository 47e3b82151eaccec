"""The GPU-machine scripts (tests/gpu/evidence_run.sh for `make gpu`, followup_run.sh for
`make gpu-followup`) run here with a stub Python that records its arguments: what each step
launches, and that everything is packed. A mistake there costs minutes of lent device time."""

import os
import shlex
import subprocess
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NODE_ID = "tests/gpu/test_bias_gelu_gpu_sizes.py::test_fused_backends_agree[bf16-none]"
STUB = """#!/usr/bin/env bash
{ printf '%q ' "$@"; echo; } >> "$STUB_LOG"
if [ "${1:-}" = tests/gpu/extension_skips.py ]; then echo "$STUB_NODE_ID"; fi
exit 0
"""


def _run(tmp_path, script, stub_source=STUB, **budgets):
    stub = tmp_path / "python"
    stub.write_text(stub_source)
    stub.chmod(0o755)
    log = tmp_path / "calls.log"
    env = dict(os.environ, PYTHON=str(stub), STUB_LOG=str(log), STUB_NODE_ID=NODE_ID,
               PACK_DIR=str(tmp_path / "out"), **{k: str(v) for k, v in budgets.items()})
    done = subprocess.run(["bash", os.path.join(ROOT, "tests", "gpu", script),
                           str(tmp_path / "results")], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    calls = [shlex.split(line) for line in log.read_text().splitlines()]
    return done, calls


def _pytest_runs(calls):
    return [call for call in calls if call[:2] == ["-m", "pytest"]]


def test_make_gpu_runs_each_test_part_on_its_own_selection(tmp_path):
    done, calls = _run(tmp_path, "evidence_run.sh", GPU_HOST_BUDGET_S=0, GPU_PROFILE_BUDGET_S=0)
    assert done.returncode == 0, done.stdout + done.stderr
    part1, part2, part3 = _pytest_runs(calls)
    assert "tests/gpu" in part1 and part1[part1.index("-k") + 1] == "not cuda"
    assert "tests/gpu" in part2 and part2[part2.index("-k") + 1] == "cuda"
    # Part 3: the tests part 1 skipped for want of the extension, and nothing else (with the
    # folder beside them, pytest would run the whole folder again).
    assert NODE_ID in part3 and "tests/gpu" not in part3 and "-k" not in part3
    assert any(call[:3] == ["-m", "fastattn", "bench"] for call in calls)
    with tarfile.open(tmp_path / "out" / "gpu-evidence.tar.gz") as archive:
        assert "./gpu-env.log" in archive.getnames()


def test_make_gpu_followup_runs_its_steps_within_budgets(tmp_path):
    done, calls = _run(tmp_path, "followup_run.sh", GPU_FOLLOWUP_EPILOGUES_BUDGET_S=0)
    assert done.returncode == 0, done.stdout + done.stderr
    modules = [call[1] for call in calls if call[0] == "-m"]
    assert modules == ["fastattn", "benchmarks.tune_attention", "benchmarks.tune_ffn",
                       "benchmarks.auto_order_ab"]
    bench, atomic_dq = calls[0], calls[1]
    assert bench[bench.index("-k") + 1] == "static or compiled" and "--quick" in bench
    assert atomic_dq[atomic_dq.index("--role") + 1] == "backward_atomic_dq"
    assert "cuBLASLt epilogues: skipped (budget 0)" in done.stdout
    with tarfile.open(tmp_path / "out" / "gpu-followup.tar.gz") as archive:
        assert {"./followup-bench.log", "./tune-ffn-plain.log"} <= set(archive.getnames())


@pytest.mark.parametrize("script", ["evidence_run.sh", "followup_run.sh"])
def test_a_step_over_its_budget_is_reported_and_the_run_fails(tmp_path, script):
    """A step cut at its budget makes the run's status 1, and the rest still runs and packs."""
    budgets = ({"GPU_BUILD_BUDGET_S": 1, "GPU_HOST_BUDGET_S": 0, "GPU_PROFILE_BUDGET_S": 0}
               if script == "evidence_run.sh" else {"GPU_FOLLOWUP_COMPILED_BUDGET_S": 1})
    slow = STUB.replace("exit 0", 'case "$*" in *setup.py*|*"static or compiled"*) sleep 5 ;; esac\n'
                                  "exit 0")
    done, _calls = _run(tmp_path, script, slow, **budgets)
    assert done.returncode == 1 and "ran out of its 1s budget" in done.stdout, done.stdout
    assert any(name.endswith(".tar.gz") for name in os.listdir(tmp_path / "out"))
