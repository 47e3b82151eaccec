"""Turning an existing module into its fastattn subclass in place, and back.

patch() swaps the class of the modules a model already has instead of building new ones: the
parameters, buffers, hooks and state_dict keys stay exactly as they were, isinstance checks
against the original class still hold, and unpatch() only has to swap the class back.
"""

import sys

ORIGINAL_CLASS = "_fastattn_original_class"


def swap_class(module, new_class, **attributes):
    """Make `module` an instance of `new_class` (a subclass of its class) with extra attributes."""
    if getattr(module, ORIGINAL_CLASS, None) is None:
        if not issubclass(new_class, type(module)):
            raise TypeError(f"fastattn: cannot turn a {type(module).__name__} into a "
                            f"{new_class.__name__}: it is not a subclass")
        setattr(module, ORIGINAL_CLASS, type(module))
        module.__class__ = new_class
    for name, value in attributes.items():
        setattr(module, name, value)
    return module


def restore_class(module, *attribute_names):
    """Undo swap_class: the original class back, the extra attributes gone."""
    original = getattr(module, ORIGINAL_CLASS, None)
    if original is None:
        return module
    for name in (ORIGINAL_CLASS, *attribute_names):
        if name in module.__dict__:
            delattr(module, name)
    module.__class__ = original
    return module


def is_adopted(module):
    return getattr(module, ORIGINAL_CLASS, None) is not None


def subclass_of(base, mixin, module_name):
    """`class <base's name>(mixin, base)` in module `module_name`, made once and kept there as a
    module attribute of that name, so that pickle finds the class of an adopted module (the module
    also builds it on attribute access, for a new process)."""
    module = sys.modules[module_name]
    existing = module.__dict__.get(base.__name__)
    if existing is not None and issubclass(existing, base):
        return existing
    doc = f"{mixin.__doc__}\n\n(For {base.__name__}.)"
    cls = type(base.__name__, (mixin, base),
               {"__module__": module_name, "__qualname__": base.__name__, "__doc__": doc})
    setattr(module, base.__name__, cls)
    return cls
