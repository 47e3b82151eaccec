"""Loads the optional compiled extension fastattn._C and remembers why it is missing."""

import functools
import glob
import os


@functools.lru_cache(maxsize=None)
def load():
    """(module, None) when fastattn._C imports, else (None, reason)."""
    try:
        from . import _C
    except ImportError as exc:
        here = os.path.dirname(os.path.abspath(__file__))
        if not glob.glob(os.path.join(here, "_C*.so")) and not glob.glob(os.path.join(here, "_C*.pyd")):
            return None, ("fastattn._C was not built: at install time nvcc or a CUDA build of torch was "
                          "missing, or FASTATTN_SKIP_CUDA_BUILD was set; reinstall with "
                          "`pip install --no-build-isolation -e .` where both are present")
        return None, f"fastattn._C was built but does not import: {exc}"
    return _C, None


def build_info():
    """What the extension was built for, or why it is absent."""
    module, error = load()
    if module is None:
        return {"built": False, "detail": error}
    return {"built": True, "cuda_archs": module.cuda_archs, "cuda_version": module.cuda_version,
            "ffn_gemm": ffn_gemm_path(module)}


def ffn_gemm_path(module):
    """How the cuda FFN runs its GEMMs in this build: "cublaslt <version>" (fused epilogues) or
    "aten" (setup.py found no cuBLASLt, or an extension built before that path existed)."""
    if getattr(module, "ffn_gemm_path", "aten") != "cublaslt":
        return "aten"
    return f"cublaslt {module.cublaslt_version}"


def require():
    """fastattn._C for the cuda backends; raises with the reason when it is missing."""
    module, error = load()
    if module is None:
        raise RuntimeError(f"the cuda backend cannot run: {error}")
    return module


def runs_on(cuda_archs, major, minor):
    """Whether an extension built for `cuda_archs` (its FASTATTN_CUDA_ARCHS, e.g. "80;90") has
    kernels for a GPU of compute capability major.minor. setup.py builds SASS for each arch, which
    runs on the same major at that minor or above ("90a": on 9.0 only), plus PTX of the newest,
    which the driver compiles for any newer GPU ("90a" PTX: 9.0 only). True when the archs are
    unknown (an extension built before it recorded them)."""
    archs = [a for a in cuda_archs.split(";") if a.rstrip("a").isdigit()]
    if not archs:
        return True
    device = (major, minor)

    def capability(arch):
        return divmod(int(arch.rstrip("a")), 10)

    for arch in archs:
        if arch.endswith("a") and capability(arch) == device:
            return True
        if not arch.endswith("a") and capability(arch)[0] == major and capability(arch) <= device:
            return True
    newest = max(archs, key=lambda a: int(a.rstrip("a")))
    return capability(newest) == device if newest.endswith("a") else capability(newest) <= device
