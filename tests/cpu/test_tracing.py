"""fastattn._tracing.size_at_most: a size comparison that adds no guard on a dynamic size (what
torch.compile and torch.export see), and the automatic backend choice that uses it."""

import pytest
from torch._dynamo.source import ConstantSource
from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv

from fastattn import _dispatch, _tracing


def _dynamic_size(hint):
    env = ShapeEnv()
    symbol = env.create_symbol(hint, source=ConstantSource("size"), dynamic_dim=DimDynamic.DYNAMIC)
    return env, env.create_symintnode(symbol, hint=hint)


@pytest.mark.parametrize("size,limit", [(5, 16), (16, 16), (17, 16)])
@pytest.mark.parametrize("unknown", [False, True])
def test_a_known_size_is_compared_exactly(size, limit, unknown):
    assert _tracing.size_at_most(size, limit, unknown=unknown) is (size <= limit)


@pytest.mark.parametrize("hint", [5, 5000])
@pytest.mark.parametrize("unknown", [False, True])
def test_a_dynamic_size_gives_the_unknown_answer_and_no_guard(hint, unknown):
    env, size = _dynamic_size(hint)
    assert _tracing.size_at_most(size, 2048, unknown=unknown) is unknown
    assert not env.guards
    bool(size <= 2048)  # what a plain comparison would have done
    assert env.guards


def test_auto_order_of_a_dynamic_size_takes_the_default_order_without_a_guard():
    env, size = _dynamic_size(100)
    assert _dispatch.auto_order("layer_norm_residual", 100) != _dispatch.AUTO_ORDER["layer_norm_residual"]
    assert _dispatch.auto_order("layer_norm_residual", size) == _dispatch.AUTO_ORDER["layer_norm_residual"]
    assert not env.guards
