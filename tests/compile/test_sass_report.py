"""tests/compile/sass_report.py, the SASS instruction counter behind the kernel notes: its parser on a
listing with a known loop, and real rows (a Triton kernel, a CUDA kernel)."""

import pytest
import sass_report
from triton_aot import sass_counts

LISTING = """
        Function : kernel_a
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0010*/                   MUFU.EX2 R2, R3 ;
        /*0020*/                   FADD R4, R2, R2 ;
        /*0030*/               @P0 BRA 0x10 ;
        /*0040*/                   EXIT ;
        /*0050*/                   BRA 0x50;
        Function : kernel_b
        /*0000*/                   EXIT ;
"""


def test_sass_counts_finds_instructions_mufu_and_loop_bodies():
    counts = sass_counts(LISTING)
    # kernel_a: six instructions; the loop runs 0x10..0x30 (three); BRA 0x50 jumps to itself.
    assert counts["kernel_a"] == {"instructions": 6, "mufu": 1, "loops": [3]}
    assert counts["kernel_b"] == {"instructions": 1, "mufu": 0, "loops": []}


def test_triton_row():
    (row,) = sass_report.rows(90, "bias_gelu fwd-erf-4x1024", cu_files=())
    label, registers, stack, counts = row
    assert label == "bias_gelu fwd-erf-4x1024 bf16" and stack == 0 and 0 < registers <= 255
    # 16 elements a thread, each with an exp2 and a reciprocal (the erfc form of 16-bit outputs).
    assert counts["mufu"] == 32 and counts["instructions"] > counts["mufu"]


@pytest.mark.skipif(sass_report.cuda_builds.NVCC is None, reason="nvcc not found: the CUDA rows "
                    "need the CUDA toolkit")
def test_cuda_row():
    (row,) = sass_report.rows(90, r"bias_gelu_bwd_kernel<__nv_bfloat16, 8, false>",
                              cu_files=("bias_gelu.cu",))
    label, registers, stack, counts = row
    assert stack == 0 and registers > 0
    # The row loop: 16 elements (two rows of 8), each with the exp2 and the reciprocal.
    assert len(counts["loops"]) == 1 and counts["loops"][0] < counts["instructions"]
    assert counts["mufu"] == 32


def test_split_combine_rows_have_no_loop():
    """The combine loads every split at once: no loop over the splits (one was a chain of memory
    latencies, one a split)."""
    rows = list(sass_report.rows(90, "attention split combine", cu_files=()))
    assert len(rows) == len(sass_report.COMBINE_CASES)
    for label, registers, stack, counts in rows:
        assert stack == 0 and counts["loops"] == [], label
