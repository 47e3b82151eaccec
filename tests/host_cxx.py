"""Builds small C++ drivers around csrc/ headers written `__host__ __device__`, so device math can
be checked on the host (g++) where there is no GPU."""

import os
import shutil
import subprocess

import pytest

CSRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "csrc")
CXX = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def build_driver(tmp_path_factory, name, source):
    """Compiles `source` with csrc/ on the include path; skips with the reason if no compiler."""
    if CXX is None:
        pytest.skip(f"no C++ compiler (g++, c++ or clang++) on PATH: cannot build the host {name} check")
    folder = tmp_path_factory.mktemp(name)
    source_path, binary = folder / "driver.cpp", folder / "driver"
    source_path.write_text(source)
    result = subprocess.run([CXX, "-O2", "-std=c++17", "-I", CSRC, str(source_path), "-o", str(binary)],
                            capture_output=True, text=True)
    assert result.returncode == 0, f"{CXX} could not build the {name} driver:\n{result.stderr}"
    return binary


def run_driver(binary, stdin_text):
    """The driver's stdout for `stdin_text`."""
    return subprocess.run([str(binary)], input=stdin_text, capture_output=True, text=True,
                          check=True).stdout
