"""Device facts the launchers need, looked up once per device, and the device their launches
run on."""

import functools
import os

import torch


def cuda_index(device):
    """The index of a CUDA torch.device (the current device when it names none)."""
    return device.index if device.index is not None else torch.cuda.current_device()


def multiprocessor_count(device):
    """SMs of a CUDA torch.device."""
    return _multiprocessor_count(cuda_index(device))


@functools.lru_cache(maxsize=None)
def _multiprocessor_count(device_index):
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def backward_program_count(device, n_rows, num_warps):
    """Programs for a row-walking backward: enough to fill the GPU at about half occupancy.

    Each program owns float32 partial sums of the weight gradients, so fewer programs mean less
    partial-sum traffic; on CPU (Triton interpreter) a handful keeps the test fast.
    """
    if device.type == "cuda":
        target = multiprocessor_count(device) * max(1, 32 // num_warps)
    else:
        target = 4
    return max(1, min(n_rows, target))


# Which tile tables (kernels/*_settings.py, keyed by ARCHS 80 and 90) a GPU takes. The sm_90 tables
# are written for Hopper's warpgroup MMA and its 227 KB of shared memory a block: some of their
# tiles need 112-136 KB (the attention forward at head dim 128, dQ at 128). Consumer parts of newer
# generations (sm_120, sm_121: RTX 50xx, RTX PRO Blackwell, DGX Spark) have 99 KB, like sm_86 and
# sm_89 (RTX 30xx/40xx, A10, L4, L40S): Triton would refuse to launch those tiles there
# (OutOfResources). So the Hopper tables go to sm_90 and newer GPUs with Hopper's shared memory
# (sm_90, sm_100, sm_103), and every other GPU takes the sm_80 tables, which the compile tier keeps
# within 99 KB (tests/compile/triton_aot.py).
HOPPER_SHARED_BYTES_PER_BLOCK = 227 * 1024
TILE_ARCHS = (80, 90)


def tile_arch_for(major, shared_bytes_per_block):
    """80 or 90: the tile tables for a GPU of compute capability `major`.x that lets a block use
    `shared_bytes_per_block` bytes of shared memory (cudaDevAttrMaxSharedMemoryPerBlockOptin)."""
    return 90 if major >= 9 and shared_bytes_per_block >= HOPPER_SHARED_BYTES_PER_BLOCK else 80


# On CPU tensors (the interpreter) there is no GPU to ask: the tables of this arch are run. The
# interpret tier sets it to 90 as well as 80, so that the Hopper-only kernel forms (transposed dK/dV
# tiles, KEYS_AS_ROWS, the TMA GEMM) have their numerics checked without a Hopper.
INTERPRET_ARCH_VARIABLE = "FASTATTN_INTERPRET_ARCH"


def tile_arch(device):
    """80 or 90: the tile tables the Triton launchers use on `device` (see tile_arch_for)."""
    if device.type != "cuda":
        arch = os.environ.get(INTERPRET_ARCH_VARIABLE, "80")
        if not arch.isdigit() or int(arch) not in TILE_ARCHS:
            raise ValueError(f"{INTERPRET_ARCH_VARIABLE}={arch!r}: expected one of "
                             f"{', '.join(map(str, TILE_ARCHS))}")
        return int(arch)
    return _cuda_tile_arch(cuda_index(device))


@functools.lru_cache(maxsize=None)
def _cuda_tile_arch(index):
    # Asked by every launch; the device properties cost microseconds of host time.
    properties = torch.cuda.get_device_properties(index)
    return tile_arch_for(properties.major, properties.shared_memory_per_block_optin)


def on_inputs_device(fn):
    """fn, run with the CUDA device of its first tensor argument made the current one.

    Triton launches on the current CUDA device whatever device the tensors are on
    (triton-lang/triton#2441): a model on cuda:1 while cuda:0 is current would fail ("Pointer
    argument cannot be accessed from Triton") or compute on the wrong GPU. The cuda backend guards
    itself (CUDAGuard in csrc/bindings.cpp); this one guard covers every backend. The autograd
    engine already runs a backward on its tensors' device; the check costs a few hundred ns."""

    @functools.wraps(fn)
    def run(*args):
        for arg in args:
            if isinstance(arg, torch.Tensor):
                if arg.is_cuda and arg.device.index != torch.cuda.current_device():
                    with torch.cuda.device(arg.device):
                        return fn(*args)
                break
        return fn(*args)

    return run
