"""Builds small C++ drivers around csrc/ headers written `__host__ __device__`, so device math can
be checked on the host (g++) where there is no GPU. Drivers that run whole kernels on the host
(tests/cuda_host_emulator.h) also need CUDA's headers: `cuda_include_dir` finds them."""

import glob
import os
import re
import shutil
import struct
import subprocess

import pytest
import torch

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
    command = [CXX, *flags, "-std=c++17", *includes, str(source_path), "-o", str(binary)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"{CXX} could not build the {name} driver:\n{result.stderr}"
    return binary


def run_driver(binary, stdin_text):
    """The driver's stdout for `stdin_text`."""
    return subprocess.run([str(binary)], input=stdin_text, capture_output=True, text=True,
                          check=True).stdout


_LAUNCH = re.compile(r"(?P<kernel>[A-Za-z_][\w:]*(?:\s*<[^;{}]*?>)?)\s*<<<(?P<config>[^;]*?)>>>"
                     r"\s*\((?P<empty>\s*\))?")
_DEVICE_MIN_MAX = re.compile(r"(?<![\w:.])(min|max)\(")
_EXTERN_SHARED = re.compile(
    r"extern\s+__shared__\s+(?P<type>[^;\[]*?)\s*(?P<name>\w+)\s*\[\s*\]\s*;")


def _launch_call(match):
    head = f"cuda_host_emulator::chevron({match['config']}).run({match['kernel']}"
    return head + (")" if match["empty"] else ", ")


def _dynamic_shared(match):
    element = re.sub(r"__align__\(\s*\d+\s*\)\s*", "", match["type"]).strip()
    return (f"{element}* const {match['name']} = "
            f"reinterpret_cast<{element}*>(cuda_host_emulator::dynamic_shared());")


def emulated_cuda_source(name):
    """csrc/`name` (a .cu file: kernels and launchers) as C++ that g++ builds against
    tests/cuda_host_emulator.h, which must come first: each `kernel<<<config>>>(args)` launch
    becomes `cuda_host_emulator::chevron(config).run(kernel, args)`, each `extern __shared__`
    array a pointer to the launch's dynamic shared memory, and CUDA's global min/max the
    emulator's."""
    with open(os.path.join(CSRC, name)) as f:
        source = f.read()
    source, launches = _LAUNCH.subn(_launch_call, source)
    assert launches, f"csrc/{name}: no kernel launch found to emulate"
    source = _DEVICE_MIN_MAX.sub(r"cuda_host_emulator::device_\1(", source)
    return _EXTERN_SHARED.sub(_dynamic_shared, source)


def build_cuda_driver(tmp_path_factory, name, source):
    """build_driver for a source that includes CUDA's headers (and tests/, for the emulator);
    skips, saying why, where none are found."""
    include = cuda_include_dir()
    if include is None:
        pytest.skip("no CUDA headers (cuda_runtime.h, cuda_bf16.h) found: neither a CUDA toolkit "
                    f"nor torch's NVIDIA wheels; cannot build the host {name} check")
    return build_driver(tmp_path_factory, name, source, include_dirs=(TESTS, include))


def build_emulated_driver(tmp_path_factory, name, cu_file, main_source):
    """A host binary of csrc/`cu_file` under the emulator, followed by `main_source` (a main()
    calling its launch_* functions)."""
    source = "\n".join(['#include "cuda_host_emulator.h"', emulated_cuda_source(cu_file),
                        '#include "emulated_driver.h"', main_source])
    return build_cuda_driver(tmp_path_factory, name, source)


# The dtype code a driver built on tests/emulated_driver.h reads first (its main's switch).
DTYPE_CODE = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2}


def run_emulated(binary, folder, ints, doubles=(), arrays=()):
    """Runs a driver built on tests/emulated_driver.h: writes `ints` (int64, the dtype code first),
    `doubles` (float64) and `arrays` (tensors: float ones as float32, bool/uint8 ones as bytes,
    int32 ones as int32) to a file in `folder`, and returns the driver's output file as one
    float32 tensor."""
    parts = [struct.pack(f"<{len(ints)}q", *ints), struct.pack(f"<{len(doubles)}d", *doubles)]
    for array in arrays:
        if array.dtype in (torch.bool, torch.uint8):
            parts.append(array.to(torch.uint8).contiguous().numpy().tobytes())
        elif array.dtype == torch.int32:
            parts.append(array.contiguous().numpy().tobytes())
        else:
            parts.append(array.float().contiguous().numpy().tobytes())
    source, target = folder / "in.bin", folder / "out.bin"
    source.write_bytes(b"".join(parts))
    result = subprocess.run([str(binary), str(source), str(target)], capture_output=True, text=True)
    assert result.returncode == 0, f"driver failed ({result.returncode}): {result.stderr}"
    return torch.frombuffer(bytearray(target.read_bytes()), dtype=torch.float32)


def padded_rows(matrix, stride):
    """[rows, cols] -> [rows, stride] with zeros after each row (a row stride beyond the width)."""
    return torch.nn.functional.pad(matrix.float(), (0, stride - matrix.shape[-1]))


def unpadded_rows(values, rows, cols, stride, dtype):
    """The inverse of padded_rows for a driver's flat float32 output."""
    return values.view(rows, stride)[:, :cols].to(dtype)
