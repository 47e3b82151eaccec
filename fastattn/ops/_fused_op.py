"""One fused op, reachable two ways that share one implementation and one autograd formula.

torch.compile and torch.export need every fused op as a torch.library custom op: an opaque graph
node with a fake (shape-only) implementation. In eager mode, though, a custom op call goes through
the dispatcher, Python argument filling, a generated autograd.Function and a dynamo-disable
wrapper. On our CPU machine (2026-11-26) a torch-backend bias_gelu took 73 us forward and 242 us
forward+backward through the custom op, 43 and 189 us through this class, against 12 and 84 for
the stock ops. On an H200, host time like this, not the kernels, set the backward benchmarks of
bias_gelu, layer_norm_residual and the FFN (0.2x-0.5x eager) and the BERT latency case.

`FusedOp` keeps the custom op for tracing and calls the Python implementation directly otherwise,
through a plain autograd.Function that uses the same `setup_context` and `backward` as the custom
op's registered autograd. Tracing is recognised conservatively: torch.compile/export running,
torch.jit.trace recording (which records a custom op as a node, but not a Triton launch), a
torch dispatch mode active (make_fx, FakeTensorMode, functionalization), or any tensor argument of
a subclass (FakeTensor, FunctionalTensor): each of these takes the custom op, as before.

Under torch.func transforms (grad, vjp, jacrev, vmap) every call goes through an autograd.Function
in the form torch.func accepts (forward and setup_context apart), the backward ops too: torch.func
then hands forward plain tensors, which the kernels need (its wrappers have no data pointer), and
a gradient of a gradient reaches a backward op's backward, which raises. vmap runs the op once per
element of the mapped dimension (`_vmap_by_loop`): right for every op and backend, not fast.
"""

import functools
import inspect
import typing

import torch

from .. import _checks, _tracing
from ..backends._device import on_inputs_device

_PLAIN_TENSOR_TYPES = _checks.PLAIN_TENSOR_TYPES


def tensor_positions(impl):
    """Positions of impl's Tensor and Optional[Tensor] parameters (from its annotations, which the
    custom op's schema comes from too): the only arguments __call__ needs to look at."""
    hints = typing.get_type_hints(impl)
    names = list(inspect.signature(impl).parameters)
    tensor_types = (torch.Tensor, typing.Optional[torch.Tensor])
    for name in names:
        hint = hints.get(name)
        if hint not in tensor_types and "Tensor" in repr(hint):
            return tuple(range(len(names)))  # a list of tensors: look at everything
    return tuple(i for i, name in enumerate(names) if hints.get(name) in tensor_types)


def public_name(qualname):
    """"fastattn::ffn_fwd" -> "fastattn.ffn", what users call."""
    return qualname.replace("::", ".").removesuffix("_fwd")


def first_order_only(backward, name):
    """backward (of an autograd.Function), made to refuse a double backward loudly.

    fastattn's gradients are first order: the triton and cuda backwards are kernels that record no
    graph, and the torch backend's are not all differentiable either (the FFN's second derivatives
    came out wrong). With create_graph=True autograd would take such gradients as constants, and a
    loss built from them (a gradient penalty, MAML's inner step) would silently lose its
    second-order terms; torch's once_differentiable catches that only when the incoming gradients
    require grad, which a penalty's need not. So a backward under create_graph=True (autograd runs
    backward functions with grad mode on exactly then) raises, on every backend."""
    message = (f"{name}: fastattn's ops have first-order gradients only, so a backward with "
               "create_graph=True (to differentiate the gradients again) is not supported; "
               "run that computation on the unpatched model (fastattn.unpatch) or stock ops")

    @functools.wraps(backward)
    def run(ctx, *grads):
        # torch.func's grad runs every backward with grad mode on, wanted or not; there the backward
        # ops, called through their Functions (FusedOp), raise if something differentiates them.
        if torch.is_grad_enabled() and not _tracing.transformed():
            raise RuntimeError(message)
        return backward(ctx, *grads)

    return run


def _vmap_by_loop(op):
    """The vmap rule of an autograd.Function running `op`: one call per element of the mapped
    dimension, outputs stacked along dimension 0. The calls go through `op` again, so that the
    transforms below this vmap (and autograd) apply to each."""

    def vmap(info, in_dims, *args):
        if info.batch_size == 0:
            return _empty_batch_outputs(op, in_dims, args)
        results = []
        for i in range(info.batch_size):
            results.append(op(*(a if d is None else a.select(d, i) for a, d in zip(args, in_dims))))
        if isinstance(results[0], torch.Tensor):
            return torch.stack(results), 0
        outputs = tuple(torch.stack(parts) for parts in zip(*results))
        return outputs, (0,) * len(outputs)

    return vmap


def _empty_batch_outputs(op, in_dims, args):
    """vmap over a mapped dimension of size 0: there is no element to run, so the outputs' shapes
    and dtypes come from the op's fake implementation, run on meta tensors of one element's shape;
    the outputs are empty tensors with 0 in front of those shapes."""
    device = None
    elements = []
    for a, d in zip(args, in_dims):
        if isinstance(a, torch.Tensor):
            device = device or a.device
            shape = list(a.shape)
            if d is not None:
                del shape[d]
            a = torch.empty(shape, dtype=a.dtype, device="meta")
        elements.append(a)
    element_outputs = op.custom_op(*elements)

    def empty_batch(o):
        return torch.empty((0, *o.shape), dtype=o.dtype, device=device)

    if isinstance(element_outputs, torch.Tensor):
        return empty_batch(element_outputs), 0
    return tuple(map(empty_batch, element_outputs)), (0,) * len(element_outputs)


def _refuse_backward(name):
    def backward(ctx, *grads):
        raise RuntimeError(f"{name}: fastattn's gradients are first order only; differentiating "
                           "them again (a gradient of a gradient) is not supported")

    return backward


def _save_nothing(ctx, inputs, output):
    pass


class FusedOp:
    """Made by `@fused_op("fastattn::name")` over the implementation; then `@op.register_fake` and
    `op.register_autograd(backward, setup_context=...)` as for a torch.library custom op. Call it
    with positional arguments only (as an autograd.Function needs)."""

    def __init__(self, qualname, impl):
        self.qualname = qualname
        self.impl = on_inputs_device(impl)  # the custom op's schema comes from impl's signature
        self.custom_op = torch.library.custom_op(qualname, mutates_args=())(self.impl)
        self._eager_function = None
        self._tensor_positions = tensor_positions(impl)
        # Until register_autograd: an op without a gradient (the backward ops) under torch.func.
        self._functorch_function = self._functorch_form(_save_nothing,
                                                        _refuse_backward(public_name(qualname)))

    def register_fake(self, fake):
        self.custom_op.register_fake(fake)
        return fake

    def register_autograd(self, backward, setup_context):
        self.custom_op.register_autograd(backward, setup_context=setup_context)
        impl = self.impl
        backward = first_order_only(backward, public_name(self.qualname))

        def forward(ctx, *args):
            output = impl(*args)
            setup_context(ctx, args, output)
            return output

        # Two Functions of one forward and backward. This one, for plain autograd, takes ctx in
        # forward: the form torch.func accepts (setup_context apart) costs every apply an
        # inspect.signature bind, 77 Python calls on top of a LayerNorm forward + backward's 135.
        self._eager_function = type(
            f"Eager_{self.qualname.replace('::', '_')}", (torch.autograd.Function,),
            {"forward": staticmethod(forward), "backward": staticmethod(backward)})
        self._functorch_function = self._functorch_form(setup_context, backward)

    def _functorch_form(self, setup_context, backward):
        """An autograd.Function running impl in the form torch.func accepts (forward and
        setup_context apart), with a vmap rule."""
        impl = self.impl
        return type(f"Func_{self.qualname.replace('::', '_')}", (torch.autograd.Function,),
                    {"forward": staticmethod(lambda *args: impl(*args)),
                     "setup_context": staticmethod(setup_context),
                     "backward": staticmethod(backward),
                     "vmap": staticmethod(_vmap_by_loop(self))})

    def __call__(self, *args):
        # One pass over the arguments (this runs on every op call; host time is what it saves).
        if _tracing.recording_or_dispatch_mode():
            return self.custom_op(*args)
        if _tracing.transformed():
            return self._functorch_function.apply(*args)
        wants_grad = False
        for i in self._tensor_positions:
            a = args[i]
            if a is not None:
                if type(a) not in _PLAIN_TENSOR_TYPES:  # FakeTensor, FunctionalTensor, ...
                    return self.custom_op(*args)
                wants_grad = wants_grad or a.requires_grad
        if wants_grad and self._eager_function is not None and torch.is_grad_enabled():
            return self._eager_function.apply(*args)
        return self.impl(*args)


def fused_op(qualname):
    """`@fused_op("fastattn::name")` over the implementation (type-annotated, as custom ops need)."""
    return lambda impl: FusedOp(qualname, impl)
