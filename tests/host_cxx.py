"""Builds small C++ drivers around csrc/ headers written `__host__ __device__`, so device math can
be checked on the host (g++) where there is no GPU. Drivers that run whole kernels on the host
(tests/cuda_host_emulator.h) also need CUDA's headers: `cuda_include_dir` finds them."""

import glob
import os
import shutil
import subprocess

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(os.path.dirname(TESTS), "csrc")
CXX = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def cuda_include_dir():
    """A folder holding cuda_runtime.h and cuda_bf16.h: the toolkit's (CUDA_HOME, CUDA_PATH,
    /usr/local/cuda*, beside nvcc), else the one in the NVIDIA wheels a CUDA build of torch
    installs (nvidia/cu13/include, nvidia/cuda_runtime/include). None if there is none."""
    candidates = [os.path.join(os.environ[name], "include")
                  for name in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(name)]
    candidates.append("/usr/local/cuda/include")
    candidates.extend(sorted(glob.glob("/usr/local/cuda-*/include"), reverse=True))
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))),
                                       "include"))
    try:
        import nvidia

        for root in nvidia.__path__:
            candidates.extend(sorted(glob.glob(os.path.join(root, "*", "include"))))
    except ImportError:
        pass
    for folder in candidates:
        if all(os.path.isfile(os.path.join(folder, name))
               for name in ("cuda_runtime.h", "cuda_bf16.h", "cuda_fp16.h")):
            return folder
    return None


def build_driver(tmp_path_factory, name, source, include_dirs=(), flags=("-O2",)):
    """Compiles `source` with csrc/ (and `include_dirs`) on the include path; skips with the reason
    if no compiler."""
    if CXX is None:
        pytest.skip(f"no C++ compiler (g++, c++ or clang++) on PATH: cannot build the host {name} check")
    folder = tmp_path_factory.mktemp(name)
    source_path, binary = folder / "driver.cpp", folder / "driver"
    source_path.write_text(source)
    includes = [arg for folder in (CSRC, *include_dirs) for arg in ("-I", folder)]
    result = subprocess.run([CXX, *flags, "-std=c++17", *includes, str(source_path), "-o", str(binary)],
                            capture_output=True, text=True)
    assert result.returncode == 0, f"{CXX} could not build the {name} driver:\n{result.stderr}"
    return binary


def run_driver(binary, stdin_text):
    """The driver's stdout for `stdin_text`."""
    return subprocess.run([str(binary)], input=stdin_text, capture_output=True, text=True,
                          check=True).stdout
