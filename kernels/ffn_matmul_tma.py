"""The FFN GEMM through Hopper's tensor memory accelerator (TMA), persistent: a variant of
kernels/ffn_matmul.py for sm_90 and newer, with the same epilogues (ffn_matmul.store_with_epilogue).

Why: the pointer kernel reached 276 TFLOP/s on the BERT-base up projection on an H100 (2026-11-26)
where cuBLAS reaches about 620; every tile load there spends registers and instructions on its
addresses and masks. Here the copy engine moves each tile into shared memory from a descriptor
(no address registers, no masks: it fills the rows and columns past an edge with zeros), and one
program per SM walks the output tiles, so that with FLATTEN the compiler can pipeline the K loop
across tile boundaries (the next tile's loads start under this tile's epilogue).

Operands arrive as TMA descriptors over whichever dimension of theirs is contiguous (made by
fastattn/backends/triton_ffn.py): A [M, K], or for a transposed activation (dY'^T, dA^T in the
weight gradients) its storage [K, M] (A_KM); B [K, N], or for an nn.Linear weight read transposed
its storage [N, K] (B_NK). A tile loaded the other way round is transposed before the product;
wgmma reads either orientation from shared memory. 16-bit inputs only (float32 takes the pointer
kernel and its full-precision dot).
"""

import triton
import triton.language as tl

from .ffn_matmul import grouped_tile, store_with_epilogue


@triton.jit
def ffn_matmul_tma_kernel(
    A, B, BIAS, PRE, C, DBIAS_PARTIAL,
    M, N, K, stride_pre_m, stride_cm, programs,
    dropout_p, dropout_scale, seed,
    HAS_BIAS: tl.constexpr, APPLY_GELU: tl.constexpr, STORE_PRE: tl.constexpr,
    GELU_GRAD: tl.constexpr, TANH: tl.constexpr, HAS_DROPOUT: tl.constexpr,
    A_KM: tl.constexpr, B_NK: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
    FLATTEN: tl.constexpr,
):
    # `programs` (the grid, about one per SM) is a runtime argument: a compiled variant per count
    # would recompile for every small GEMM with fewer tiles than SMs.
    tiles = tl.cdiv(M, BLOCK_M) * tl.cdiv(N, BLOCK_N)
    k_steps = tl.cdiv(K, BLOCK_K)
    for tile in tl.range(tl.program_id(0), tiles, programs, flatten=FLATTEN):
        pid_m, pid_n = grouped_tile(tile, M, N, BLOCK_M, BLOCK_N, GROUP_M)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k in range(k_steps):
            if A_KM:
                a = A.load([k * BLOCK_K, pid_m * BLOCK_M]).T
            else:
                a = A.load([pid_m * BLOCK_M, k * BLOCK_K])
            if B_NK:
                b = B.load([pid_n * BLOCK_N, k * BLOCK_K]).T
            else:
                b = B.load([k * BLOCK_K, pid_n * BLOCK_N])
            acc = tl.dot(a, b, acc)
        store_with_epilogue(acc, pid_m, pid_n, M, N, BIAS, PRE, C, DBIAS_PARTIAL, stride_pre_m,
                            stride_cm, dropout_p, dropout_scale, seed, HAS_BIAS, APPLY_GELU,
                            STORE_PRE, GELU_GRAD, TANH, HAS_DROPOUT, BLOCK_M, BLOCK_N)
