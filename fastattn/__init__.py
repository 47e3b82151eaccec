"""fastattn: fused Triton and CUDA C++ kernels for BERT- and GPT2-style transformers."""

import importlib.util
import os
import sys

__version__ = "0.1.0"


def _ensure_kernels_package():
    """Make `fastattn.kernels` importable from a plain source checkout.

    Installed (also editable) packages map the top-level kernels/ folder to fastattn.kernels through
    setup.py's package_dir. A checkout used in place (PYTHONPATH=<repo>, as `make gpu` does after
    `setup.py build_ext --inplace`) has no such mapping, so load kernels/ under that name here.
    """
    if importlib.util.find_spec("fastattn.kernels") is not None:
        return
    source = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kernels")
    init = os.path.join(source, "__init__.py")
    if not os.path.exists(init):
        return
    spec = importlib.util.spec_from_file_location("fastattn.kernels", init,
                                                  submodule_search_locations=[source])
    module = importlib.util.module_from_spec(spec)
    sys.modules["fastattn.kernels"] = module
    spec.loader.exec_module(module)


def _checkout_root_last_on_path():
    """In a source checkout, move the checkout's root to the end of sys.path.

    The root holds kernels/ (installed as fastattn.kernels), and `kernels` is also the name of a
    PyPI package: Hugging Face's hub kernels, which transformers imports when it is installed (and
    requires from 5.2x on). With the root first on sys.path (`python -m ...` run in the checkout,
    or PYTHONPATH=<checkout>), `import kernels` found the folder and importing transformers failed
    ("cannot import name 'CUDAProperties' from 'kernels'"). Last, the root still provides what
    only it has: fastattn itself when not installed, and benchmarks/. tests/conftest.py and
    benchmarks/__init__.py do the same for processes that may import transformers first.
    """
    root = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    at_root = [p for p in sys.path if os.path.realpath(p or os.curdir) == root]
    if at_root and os.path.isdir(os.path.join(root, "kernels")):
        sys.path[:] = [p for p in sys.path if p not in at_root] + at_root


_ensure_kernels_package()
_checkout_root_last_on_path()

from . import reference  # noqa: E402
from ._dispatch import BackendUnavailableError, available_backends, use_backend  # noqa: E402
from .ops.attention import attention, attention_varlen  # noqa: E402
from .ops.bias_gelu import bias_gelu  # noqa: E402
from .ops.ffn import ffn  # noqa: E402
from .ops.layer_norm_residual import layer_norm_residual  # noqa: E402
from .ops.masked_softmax import masked_softmax  # noqa: E402
from .hf import patch, unpatch  # noqa: E402
from .ops.padding import pad, unpad  # noqa: E402

__all__ = [
    "BackendUnavailableError",
    "attention",
    "attention_varlen",
    "available_backends",
    "bias_gelu",
    "ffn",
    "layer_norm_residual",
    "masked_softmax",
    "patch",
    "pad",
    "reference",
    "unpatch",
    "unpad",
    "use_backend",
]
