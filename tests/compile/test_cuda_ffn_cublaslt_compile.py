"""Compile tier for csrc/ffn_cublaslt.cpp, the FFN's cuBLASLt host code (no kernels, so the .cu
compile test does not cover it): built with the host compiler against the cuBLASLt that setup.py
would find (find_cublaslt.py) and linked as a shared object with no undefined symbols, so every
cuBLASLt call resolves against the library. No GPU, no torch needed; skips, saying why, without a
CUDA toolkit or cuBLASLt."""

import glob
import os
import shutil
import site
import subprocess
import sys

import pytest

from test_cuda_kernels_compile import CSRC, NVCC

sys.path.insert(0, CSRC)
import find_cublaslt  # noqa: E402  (csrc/find_cublaslt.py, setup.py's helper)

CXX = shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def site_dirs():
    dirs = list(site.getsitepackages()) if hasattr(site, "getsitepackages") else []
    dirs += [p for p in sys.path if p.endswith("-packages")]
    return list(dict.fromkeys(d for d in dirs if os.path.isdir(d)))


def toolkit():
    return os.path.dirname(os.path.dirname(os.path.realpath(NVCC))) if NVCC else None


def cudart_dir(root):
    for folder in find_cublaslt.toolkit_library_dirs(root):
        if glob.glob(os.path.join(folder, "libcudart.so*")):
            return folder
    return None


def test_ffn_cublaslt_builds_and_links(tmp_path):
    if CXX is None:
        pytest.skip("no C++ compiler (g++, c++ or clang++) on PATH")
    root = toolkit()
    if root is None or cudart_dir(root) is None:
        pytest.skip("no CUDA toolkit (nvcc and libcudart): cuda_runtime.h and libcudart are needed")
    found, notes = find_cublaslt.find_cublaslt(root, site_dirs())
    if found is None:
        pytest.skip("cuBLASLt not found, the extension builds without it: " + "; ".join(notes))
    source = os.path.join(os.path.dirname(CSRC), find_cublaslt.SOURCE)
    command = [CXX, "-std=c++17", "-O2", "-Wall", "-Wextra", "-fPIC", "-shared", "-I", CSRC,
               "-I", os.path.join(root, "include"), *find_cublaslt.compile_flags(found), source,
               "-o", str(tmp_path / "libffn_cublaslt.so"), "-Wl,--no-undefined",
               *find_cublaslt.link_flags(found), f"-L{cudart_dir(root)}", "-lcudart"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output}"
    assert "warning" not in output, f"{source} compiles with warnings:\n{output}"
