"""Triton attention configurations whose tiles still spill registers, or that computed wrong numbers
on a GPU, are switched off there: the automatic choice skips them, asking for triton by name says
why, and the compile tier leaves the spilling ones out (kernels.attention_settings.SPILLING,
WRONG_ON_GPU)."""

import pytest
import torch

import attn_cases
import fastattn
from fastattn import _dispatch
from fastattn.kernels import attention_settings as settings

# (head dim, float32 inputs, dropout, needs backward) of one switched-off and one enabled call.
SWITCHED_OFF = (256, True, True, True)  # d256 float32 (3-pass TF32) training with dropout
ENABLED = (128, False, False, True)  # the headline case: 16-bit d128, forward and backward


@pytest.mark.parametrize("arch", settings.ARCHS)
def test_spilling_configs_are_not_compiled_or_launched(arch):
    listed = {config[:2] + config[3:5] for config in settings.all_configs() if config[2] == arch}
    assert not {key for key, archs in settings.SPILLING.items() if arch in archs} & listed
    assert settings.switch_off_reason(*SWITCHED_OFF, arch=arch) is not None
    assert settings.switch_off_reason(*ENABLED, arch=arch) is None
    # The backward roles count only when gradients are needed: dK/dV d128 float32 with dropout
    # spills, and the d256 float32 forward and decode fit (Q K^T over head-dim slices).
    assert settings.switch_off_reason(128, True, True, False, arch=arch) is None
    assert settings.switch_off_reason(128, True, True, True, arch=arch) is not None
    assert settings.switch_off_reason(256, True, True, False, arch=arch) is None
    # Without dropout the d128 float32 dK/dV fits as two launches (dV, then dK).
    assert settings.switch_off_reason(128, True, False, True, arch=arch) is None
    assert settings.dkdv_separate_dv(128, True, False, "tf32x3")
    assert not settings.dkdv_separate_dv(128, True, True, "tf32x3")  # switched off instead
    assert not settings.dkdv_separate_dv(128, True, False, "tf32")  # 1-pass TF32: one launch
    assert not settings.dkdv_separate_dv(128, False, False, "tf32")  # 16-bit: one launch
    reason = settings.switch_off_reason(*SWITCHED_OFF, arch=arch)
    assert "spill registers" in reason and f"sm_{arch}" in reason


def test_a_config_spilling_in_one_tile_table_is_off_only_there():
    """float32 d256 training without dropout: its dQ tile spills in the sm_80 tables and fits in
    Hopper's (16x16, one stage), so GPUs taking Hopper's tables run it on triton."""
    key = ("backward_dq", 256, True, False)
    assert settings.SPILLING[key] == {80}
    assert "backward_dq" in settings.switch_off_reason(256, True, False, True, arch=80)
    assert settings.switch_off_reason(256, True, False, True, arch=90) is None
    hopper = [config for config in settings.all_configs() if config[:2] + config[3:5] == key]
    assert [config[2] for config in hopper] == [90]
    assert hopper[0][5] == settings.backward_dq_tiles(256, 90, True, False)


def test_tf32_allowed_lifts_the_spill_switch_off_and_is_compiled(monkeypatch):
    """With 1-pass TF32 dots every float32 tile fits: the SPILLING configs run, and the compile
    tier builds each of them (tf32_configs) as launched there."""
    tf32 = {(role, d, arch, dropout)
            for role, d, arch, fp32, dropout, _ in settings.tf32_configs()}
    assert {(role, d, arch, dropout) for (role, d, _fp32, dropout), archs
            in settings.SPILLING.items() for arch in archs} <= tf32
    assert settings.switch_off_reason(*SWITCHED_OFF, arch=80, tf32=True) is None
    assert settings.switch_off_reason(128, True, True, True, arch=90, tf32=True) is None
    assert "allow_tf32" in settings.switch_off_reason(128, True, True, True, arch=90)
    # WRONG_ON_GPU is about what a kernel computed, not registers: TF32 does not lift it.
    assert "wrong dK" in settings.switch_off_reason(32, True, True, True, arch=90, tf32=True)
    # The dispatcher asks torch's flag at each call, and the GPU's tile tables.
    for arch in settings.ARCHS:
        unsupported = _gpu_call(monkeypatch, 256, torch.float32, requires_grad=True, arch=arch)
        assert "spill registers" in unsupported(0.1)["triton"]
        assert ("triton" in unsupported()) == (arch == 80)  # dQ d256 without dropout: sm_80 only
        with attn_cases.tf32_allowed():
            assert "triton" not in unsupported(0.1)


def test_wrong_on_gpu_configs_are_switched_off_only_where_launched(monkeypatch):
    # dK/dV d32 float32 with dropout gave a wrong dK on an H100: off when gradients are needed.
    for arch in settings.ARCHS:
        reason = settings.switch_off_reason(32, True, True, True, arch=arch)
        assert reason is not None and "wrong dK" in reason and reason.startswith("switched off")
        assert settings.switch_off_reason(32, True, True, False, arch=arch) is None  # forward only
        assert settings.switch_off_reason(32, True, False, True, arch=arch) is None  # no dropout
        assert settings.switch_off_reason(32, False, True, True, arch=arch) is None  # 16-bit
    # The dispatcher's GPU check picks it up for a training call (BackendUnavailableError's
    # "switched off" is what the gpu tier reports as a skip), not for inference.
    unsupported = _gpu_call(monkeypatch, 32, torch.float32, requires_grad=True)
    assert "wrong dK" in unsupported(0.1)["triton"]
    with torch.no_grad():
        assert "triton" not in unsupported(0.1)
    with pytest.raises(fastattn.BackendUnavailableError, match="wrong dK"):
        _dispatch.resolve_backend("attention", torch.device("cuda"), "triton", unsupported(0.1))


def _gpu_call(monkeypatch, head_dim, dtype, requires_grad=False, arch=90):
    """_unsupported_backends(dropout_p) of an attention call that dispatch takes for one on a GPU
    whose tile tables are `arch`'s (only the device type and the tables matter to the switch),
    with every backend present."""
    from fastattn.ops import attention as attention_op

    monkeypatch.setattr(_dispatch, "why_backend_cannot_run", lambda name, device: None)
    monkeypatch.setattr(attention_op, "tile_arch", lambda device: arch)
    q, k, v = (torch.empty(1, 2, 4, head_dim, device="meta", dtype=dtype,
                           requires_grad=requires_grad) for _ in range(3))
    monkeypatch.setattr(torch.Tensor, "device", property(lambda self: torch.device("cuda")))
    from fastattn.ops.attention import _unsupported_backends
    return lambda dropout_p=0.0: _unsupported_backends(q, k, v, dropout_p, q.shape[0])


@pytest.mark.parametrize("head_dim,q_dtype,arch,expected", [
    (256, torch.float32, 80, "switched off"), (256, torch.float32, 90, None),
    (128, torch.bfloat16, 90, None)])
def test_dispatch_on_gpu_honours_the_switch(monkeypatch, head_dim, q_dtype, arch, expected):
    unsupported = _gpu_call(monkeypatch, head_dim, q_dtype, requires_grad=True, arch=arch)
    reason = unsupported().get("triton")
    if expected is None:
        assert reason is None
        return
    assert expected in reason
    assert _dispatch.resolve_backend("attention", torch.device("cuda"),
                                     unsupported=unsupported()) != "triton"
    with pytest.raises(fastattn.BackendUnavailableError, match="spill registers"):
        _dispatch.resolve_backend("attention", torch.device("cuda"), "triton", unsupported())


def test_head_chunks_only_where_three_pass_tf32_needs_them():
    """Score products summed over head-dim slices (kernels.attention_tiles.dot_over_head_dim) only
    for 3-pass TF32 at the head dims whose whole-tile operands spilled; 16-bit and 1-pass TF32
    launch one product, so their kernels are what they were."""
    assert settings.head_chunk("forward", 256, "tf32x3") < 256
    assert settings.head_chunk("decode", 256, "tf32x3") < 256
    assert settings.head_chunk("backward_dkdv", 128, "tf32x3") < 128
    assert settings.head_chunk("forward", 128, "tf32x3") == 128
    for role in ("forward", "decode", "backward_dkdv", "backward_dq"):
        for block_d in (16, 32, 64, 128, 256):
            chunk = settings.head_chunk(role, block_d, "tf32x3")
            assert block_d % chunk == 0 and chunk % 16 == 0  # whole slices, each a tl.dot's K
            assert settings.head_chunk(role, block_d, "tf32") == block_d
