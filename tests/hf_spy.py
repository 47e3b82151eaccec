"""Record calls to fastattn's public ops while a block of code runs (the ops stay in use)."""

import contextlib

import fastattn


@contextlib.contextmanager
def spy(*names):
    """Yields {name: [(args, kwargs), ...]}; wraps fastattn.<name> for the block's duration."""
    calls = {name: [] for name in names}
    originals = {name: getattr(fastattn, name) for name in names}

    def wrapper(name):
        def record(*args, **kwargs):
            calls[name].append((args, kwargs))
            return originals[name](*args, **kwargs)
        return record

    try:
        for name in names:
            setattr(fastattn, name, wrapper(name))
        yield calls
    finally:
        for name, original in originals.items():
            setattr(fastattn, name, original)
