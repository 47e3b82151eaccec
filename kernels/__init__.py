"""Triton kernels of fastattn, one module per op family (installed as `fastattn.kernels`).

Modules here import only triton and the standard library at module level, so the compile tier can
build every kernel ahead of time in an environment that holds nothing but triton.
"""
