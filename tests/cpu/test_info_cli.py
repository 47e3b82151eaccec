"""`python -m fastattn info` runs and reports what it promises."""

import json
import os
import subprocess
import sys

import torch


def run_info(*args, env=None):
    return subprocess.run([sys.executable, "-m", "fastattn", "info", *args], check=True,
                          capture_output=True, text=True, env=env).stdout


def test_info_names_versions_device_extension_and_interpreter():
    out = run_info()
    assert f"torch {torch.__version__}" in out
    assert "extension fastattn._C:" in out
    assert "Triton interpreter (TRITON_INTERPRET=1): off" in out
    if not torch.cuda.is_available():
        assert "no CUDA GPU visible" in out


def test_info_json_and_interpreter_flag():
    env = dict(os.environ, TRITON_INTERPRET="1")
    facts = json.loads(run_info("--json", env=env))
    assert facts["triton_interpreter"] is True
    assert facts["backends"]["torch"]["available"] is True
    assert facts["backends"]["triton"]["available"] is True  # on CPU tensors, interpreted
    assert set(facts["extension"]) >= {"built"}
