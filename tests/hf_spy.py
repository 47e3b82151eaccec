"""Record calls to fastattn's public ops (or another module's functions) while a block of code runs
(the functions stay in use)."""

import contextlib

import fastattn


@contextlib.contextmanager
def spy(*names, module=fastattn):
    """Yields {name: [(args, kwargs), ...]}; wraps module.<name> for the block's duration."""
    calls = {name: [] for name in names}
    originals = {name: getattr(module, name) for name in names}

    def wrapper(name):
        def record(*args, **kwargs):
            calls[name].append((args, kwargs))
            return originals[name](*args, **kwargs)
        return record

    try:
        for name in names:
            setattr(module, name, wrapper(name))
        yield calls
    finally:
        for name, original in originals.items():
            setattr(module, name, original)
