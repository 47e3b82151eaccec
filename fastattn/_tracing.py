"""Whether a trace is recording the current call, or torch.func transforms are running it.

torch.compile / torch.export (dynamo) and torch.jit.trace record a model once and replay the
record. Python that branches on tensor values (a mask that is all ones, the number of real tokens
of a padded batch) or keeps tensors between calls (a weight concatenation kept) would have what
it saw on the tracing inputs baked into the record, which then gives wrong answers on other
inputs. torch.func's vmap has no values to give Python at all, and its batched tensors no storage
to cache. In both cases fastattn takes the paths that depend on shapes only.
"""

import torch
from torch.fx.experimental.symbolic_shapes import statically_known_true
from torch.utils._python_dispatch import _get_current_dispatch_mode

from . import _checks


# The C functions behind torch.jit.is_tracing and torch.func's own check, called directly: these
# checks run on every op call, and a Python wrapper around each costs about 0.1 us. Dynamo
# (torch.compile) cannot trace them: call them only once torch.compiler.is_compiling() is False.
jit_tracing = torch._C._is_tracing
# transformed(): True while torch.func transforms (grad, vjp, jacrev, vmap, ...) run this call.
transformed = torch._C._are_functorch_transforms_active


def recording():
    """True while torch.compile, torch.export or torch.jit.trace records this call."""
    return torch.compiler.is_compiling() or jit_tracing()


def recording_or_dispatch_mode():
    """recording(), or a torch dispatch mode active (make_fx, FakeTensorMode, functionalization):
    whether a call must reach the trace as a custom op. Written out: it runs on every op call."""
    return (torch.compiler.is_compiling() or jit_tracing()
            or _get_current_dispatch_mode() is not None)


def plain_eager(*tensors):
    """True for a call that runs in plain eager mode: nothing records or transforms it
    (recording_or_dispatch_mode(), torch.func) and its tensors (None allowed) are plain Tensors or
    Parameters, no subclass. Where an op may run stock PyTorch ops instead of its custom op."""
    if recording_or_dispatch_mode() or transformed():
        return False
    for t in tensors:
        if t is not None and type(t) not in _checks.PLAIN_TENSOR_TYPES:
            return False
    return True


def size_at_most(size, limit, *, unknown):
    """size <= limit for a choice between two right paths (a backend order, padding kept or
    dropped), decided without a guard on a dynamic size under torch.compile / torch.export: there
    the answer is `unknown` whenever the size is symbolic. A guard would pin the size to one side
    of `limit`, and torch.export refuses a guard narrower than the range the user declared."""
    if not isinstance(size, torch.SymInt):  # an int (or a traced size under torch.jit.trace)
        return bool(size <= limit)
    if unknown:
        return not statically_known_true(size > limit)
    return statically_known_true(size <= limit)


def shapes_only():
    """True when Python must decide from shapes alone and keep no tensor between calls."""
    return recording() or transformed()


def needs_grad(*tensors):
    """Whether a backward through these tensors can follow, so the forward must keep what it
    needs. Under torch.jit.trace always: the record serves inference and training replays alike,
    and jit.trace's own check records the model again under no_grad, which must give the same
    record."""
    # jit_tracing() only outside dynamo, which traces this function and cannot trace that call.
    if not torch.compiler.is_compiling() and jit_tracing():
        return True
    return torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
