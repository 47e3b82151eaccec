"""Compile tier for the CUDA C++ kernels: every csrc/*.cu built for sm_80 and sm_90a with nvcc, no GPU.

ptxas reports per function its registers, stack frame and spill traffic. A stack frame or spill
bytes mean local memory in a hot loop, so any of them fails the test. Runs without torch (this tier
also runs in an environment holding only triton, numpy and pytest); skips, saying why, without nvcc.
"""

import glob
import os
import re
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CSRC = os.path.join(REPO, "csrc")
CU_FILES = sorted(os.path.basename(path) for path in glob.glob(os.path.join(CSRC, "*.cu")))
ARCHS = ("sm_80", "sm_90a")
# The flags the extension build gives nvcc (setup.py's, plus torch's no-implicit-half-conversion
# defines), less the -gencode list: one arch per test here.
NVCC_FLAGS = ("-O3", "-std=c++17", "-lineinfo", "--expt-relaxed-constexpr",
              "-D__CUDA_NO_HALF_OPERATORS__", "-D__CUDA_NO_HALF_CONVERSIONS__",
              "-D__CUDA_NO_BFLOAT16_CONVERSIONS__", "-D__CUDA_NO_HALF2_OPERATORS__")


def find_nvcc():
    candidates = []
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(variable):
            candidates.append(os.path.join(os.environ[variable], "bin", "nvcc"))
    candidates.append("/usr/local/cuda/bin/nvcc")
    candidates.extend(sorted(glob.glob("/usr/local/cuda-*/bin/nvcc"), reverse=True))
    candidates.append(shutil.which("nvcc"))
    for path in candidates:
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


NVCC = find_nvcc()

_ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(\w+)'")
_PROPERTIES = re.compile(r"Function properties for (\S+)")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
_LMEM = re.compile(r"(\d+) bytes lmem")


def parse_ptxas_report(text):
    """name -> {"registers", "stack", "spill_stores", "spill_loads", "lmem"} from `ptxas -v` output."""
    functions = {}
    entry = properties_of = None
    for line in text.splitlines():
        if match := _ENTRY.search(line):
            entry = match.group(1)
            functions.setdefault(entry, {})
        elif match := _PROPERTIES.search(line):
            properties_of = match.group(1)
            functions.setdefault(properties_of, {})
        elif (match := _FRAME.search(line)) and properties_of is not None:
            stack, stores, loads = map(int, match.groups())
            functions[properties_of].update(stack=stack, spill_stores=stores, spill_loads=loads)
            properties_of = None
        elif (match := _USED.search(line)) and entry is not None:
            lmem = _LMEM.search(line)
            functions[entry].update(registers=int(match.group(1)),
                                    lmem=int(lmem.group(1)) if lmem else 0)
            entry = None
    return functions


def demangle(names):
    """Readable names where c++filt is installed, else the mangled ones."""
    cxxfilt = shutil.which("c++filt")
    if not cxxfilt or not names:
        return {name: name for name in names}
    result = subprocess.run([cxxfilt], input="\n".join(names), capture_output=True, text=True)
    readable = result.stdout.splitlines()
    if result.returncode != 0 or len(readable) != len(names):
        return {name: name for name in names}
    return dict(zip(names, readable))


def test_parse_ptxas_report():
    report = """\
ptxas info    : Compiling entry function '_Z6kernelPf' for 'sm_80'
ptxas info    : Function properties for _Z6kernelPf
    16 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads
ptxas info    : Used 255 registers, used 1 barriers, 16 bytes lmem, 360 bytes cmem[0]
"""
    assert parse_ptxas_report(report) == {"_Z6kernelPf": {
        "stack": 16, "spill_stores": 8, "spill_loads": 4, "registers": 255, "lmem": 16}}


@pytest.mark.skipif(NVCC is None, reason="nvcc not found (looked in $CUDA_HOME/bin, "
                    "/usr/local/cuda*/bin and PATH): the .cu compile tier needs the CUDA toolkit")
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("cu_file", CU_FILES or [pytest.param(None, marks=pytest.mark.skip(
    reason="no csrc/*.cu files"))])
def test_cu_file_compiles_without_spills(cu_file, arch, tmp_path):
    command = [NVCC, "-cubin", f"-arch={arch}", *NVCC_FLAGS, "-I", CSRC, "-Xptxas", "-v",
               "-o", str(tmp_path / "out.cubin"), os.path.join(CSRC, cu_file)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    if result.returncode != 0 and "Unsupported gpu architecture" in output:
        pytest.skip(f"{NVCC} cannot target {arch}: {output.strip().splitlines()[-1]}")
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{output}"

    functions = parse_ptxas_report(output)
    assert functions, f"no ptxas resource report for {cu_file} ({arch}); nvcc said:\n{output}"
    names = demangle(sorted(functions))
    bad = []
    for name, usage in sorted(functions.items()):
        print(f"{cu_file} {arch} {names[name]}: {usage}")
        local_bytes = (usage.get("stack", 0), usage.get("spill_stores", 0),
                       usage.get("spill_loads", 0), usage.get("lmem", 0))
        if any(local_bytes):
            bad.append(f"  {names[name]}: {usage}")
    assert not bad, (f"{cu_file} for {arch}: kernels using local memory (stack frame, spills or lmem "
                     "must all be 0):\n" + "\n".join(bad))
