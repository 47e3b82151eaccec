"""Build for fastattn: the Python package, the Triton kernels as `fastattn.kernels`, and the
optional CUDA C++ extension `fastattn._C`.

The extension is built only when a CUDA build of torch and nvcc are both present; otherwise the
package installs without it and `fastattn.available_backends()` says why. Switches:
  FASTATTN_SKIP_CUDA_BUILD=1   never build the extension
  FASTATTN_CUDA_ARCHS="80;90"  SM targets (SASS for each, plus PTX of the newest)
  MAX_JOBS=N                   parallel compile jobs (honoured by torch's ninja builder)
  CUDA_HOME=/path              toolkit root, when it cannot be found from nvcc

The FFN's GEMMs call cuBLASLt directly when its header and library are found (csrc/find_cublaslt.py:
the toolkit, or the NVIDIA pip packages torch depends on); otherwise they go through ATen and the
build log and `python -m fastattn info` say so.
"""

import glob
import os
import shutil
import site
import sys

from setuptools import setup

HERE = os.path.dirname(os.path.abspath(__file__))
# A build helper kept with the sources it links (the top-level layout is fixed); pip's build
# backend puts neither folder on sys.path.
sys.path.insert(0, os.path.join(HERE, "csrc"))
import find_cublaslt  # noqa: E402
DEFAULT_ARCHS = "80;90"


def log(msg):
    print(f"fastattn setup: {msg}", file=sys.stderr)


def find_cuda_home():
    """The toolkit root whose bin/ holds nvcc and whose lib64/ holds libcudart.

    torch guesses the root as the parent of the directory holding `nvcc`, which is wrong when nvcc
    is a wrapper or symlink in a generic bin/ (e.g. /usr/local/bin/nvcc): linking -lcudart then
    fails. So check each candidate for the runtime library before trusting it.
    """
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    candidates.append("/usr/local/cuda")
    candidates.extend(sorted(glob.glob("/usr/local/cuda-*"), reverse=True))
    for root in candidates:
        if not root:
            continue
        has_nvcc = os.path.exists(os.path.join(root, "bin", "nvcc"))
        has_cudart = glob.glob(os.path.join(root, "lib*", "libcudart.so*")) or glob.glob(
            os.path.join(root, "targets", "*", "lib", "libcudart.so*"))
        if has_nvcc and has_cudart:
            return root
    return None


def parse_archs(spec):
    archs = [a.strip().replace("sm_", "").replace(".", "") for a in spec.split(";") if a.strip()]
    if not archs or not all(a.rstrip("a").isdigit() for a in archs):
        raise SystemExit(f"FASTATTN_CUDA_ARCHS={spec!r}: expected numbers like '80;90'")
    return archs


def gencode_flags(archs):
    flags = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    newest = max(archs, key=lambda a: int(a.rstrip("a")))
    flags.append(f"-gencode=arch=compute_{newest},code=compute_{newest}")
    return flags


def site_dirs(torch_module):
    """Where NVIDIA's pip packages may be: torch's own site-packages first (its CUDA libraries come
    from there), then the interpreter's."""
    dirs = [os.path.dirname(os.path.dirname(os.path.abspath(torch_module.__file__)))]
    try:
        dirs += site.getsitepackages()
    except AttributeError:  # some virtualenv layouts lack it
        pass
    dirs += [p for p in sys.path if p.endswith("-packages")]
    return list(dict.fromkeys(d for d in dirs if os.path.isdir(d)))


def cublaslt_flags(cuda_home, torch_module):
    """(sources, cxx flags, link flags) of the cuBLASLt FFN path; all empty when it is not found."""
    found, notes = find_cublaslt.find_cublaslt(cuda_home, site_dirs(torch_module))
    for note in notes:
        log(f"cuBLASLt: {note}")
    if found is None:
        log("cuBLASLt not found: the FFN's GEMMs will go through ATen (fastattn._C.ffn_gemm_path = 'aten')")
        return [], [], []
    log(f"cuBLASLt {found.version_major}.x: the FFN's GEMMs call it directly with their epilogues")
    return ([find_cublaslt.SOURCE], find_cublaslt.compile_flags(found),
            find_cublaslt.link_flags(found))


def cuda_extension():
    """Returns (ext_modules, cmdclass); both empty when the extension cannot or should not build."""
    if os.environ.get("FASTATTN_SKIP_CUDA_BUILD", "0") not in ("", "0"):
        log("FASTATTN_SKIP_CUDA_BUILD is set: building without fastattn._C")
        return [], {}
    try:
        import torch
    except ImportError:
        log("torch is not installed in the build environment: building without fastattn._C "
            "(install torch first and use pip install --no-build-isolation)")
        return [], {}
    if torch.version.cuda is None:
        log(f"torch {torch.__version__} is a CPU build: building without fastattn._C")
        return [], {}
    cuda_home = find_cuda_home()
    if cuda_home is None:
        log("nvcc and libcudart not found (set CUDA_HOME): building without fastattn._C")
        return [], {}
    # torch.utils.cpp_extension reads CUDA_HOME once, when it is imported.
    os.environ["CUDA_HOME"] = cuda_home
    from torch.utils.cpp_extension import BuildExtension, CUDAExtension

    archs = parse_archs(os.environ.get("FASTATTN_CUDA_ARCHS", DEFAULT_ARCHS))
    log(f"building fastattn._C with {cuda_home} for sm_{', sm_'.join(archs)}")
    lt_sources, lt_cxx_flags, lt_link_flags = cublaslt_flags(cuda_home, torch)
    sources = sorted(set(glob.glob("csrc/*.cpp")) - {find_cublaslt.SOURCE}) + lt_sources + sorted(
        glob.glob("csrc/*.cu"))
    archs_define = f'-DFASTATTN_CUDA_ARCHS="{";".join(archs)}"'
    ext = CUDAExtension(
        name="fastattn._C",
        sources=sources,
        include_dirs=[os.path.join(HERE, "csrc")],
        extra_compile_args={
            "cxx": ["-O3", archs_define] + lt_cxx_flags,
            "nvcc": ["-O3", "-std=c++17", "-lineinfo", archs_define]
            + gencode_flags(archs),
        },
        extra_link_args=lt_link_flags,
    )
    return [ext], {"build_ext": BuildExtension.with_options(use_ninja=shutil.which("ninja") is not None)}


ext_modules, cmdclass = cuda_extension()

setup(
    packages=["fastattn", "fastattn.ops", "fastattn.backends", "fastattn.kernels", "fastattn.nn", "fastattn.hf"],
    package_dir={"fastattn.kernels": "kernels"},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
