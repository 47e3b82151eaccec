"""compile tier: kernels built ahead of time for sm_80 and sm_90 without a GPU. No torch here."""

import os
import sys

# The Triton kernels are imported from the source folder as the top-level package `kernels`.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
