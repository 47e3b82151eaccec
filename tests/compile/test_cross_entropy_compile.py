"""The cross-entropy kernels (kernels/cross_entropy.py) compile for sm_80 and sm_90 without spills,
for each logits dtype (their one launch configuration: BLOCK columns, NUM_WARPS)."""

import pytest
from triton_aot import ARCHS, assert_no_spills, compile_kernel

from kernels import cross_entropy as ce


def ce_types(elem):
    return {"LOGITS": f"*{elem}", "GRAD_LOGITS": f"*{elem}", "TARGET": "*i64", "LOSS": "*fp32",
            "LSE": "*fp32", "GRAD_LOSS": "*fp32", "stride_row": "i32", "stride_grad_row": "i32",
            "n_cols": "i32", "ignore_index": "i32"}


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: f"sm_{a}")
@pytest.mark.parametrize("dtype", ["bf16", "fp16", "fp32"])
@pytest.mark.parametrize("kernel", [ce.cross_entropy_fwd_kernel, ce.cross_entropy_bwd_kernel],
                         ids=["fwd", "bwd"])
def test_cross_entropy_compiles_without_spills(kernel, dtype, arch):
    types = {name: t for name, t in ce_types(dtype).items() if name in kernel.arg_names}
    compiled = compile_kernel(kernel, types, {"BLOCK": ce.BLOCK}, arch, ce.NUM_WARPS)
    assert_no_spills(compiled, arch, f"cross_entropy {kernel.__name__} {dtype}")
