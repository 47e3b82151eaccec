"""Per-backend implementations of the ops. Each module holds the host side of one backend for one
op family; the public front (fastattn.ops) validates arguments and picks the module."""

import functools
import importlib


@functools.lru_cache(maxsize=None)
def module_for(backend, family):
    """fastattn.backends.<backend>_<family> (e.g. "triton", "attention"), imported on first use
    (a backend's kernels load only when it runs) and looked up from this cache on every call."""
    return importlib.import_module(f"{__name__}.{backend}_{family}")
