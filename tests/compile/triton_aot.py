"""Ahead-of-time compilation of Triton kernels for a GPU that is not here, and the resource report
of the cubin (`cuobjdump --dump-resource-usage`, shipped inside the triton package).

Imports only triton and the standard library: this tier also runs in an environment that holds
nothing but triton (the GPU machines' version), numpy and pytest."""

import contextlib
import os
import re
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

ARCHS = (80, 90)

# Shared memory a block may use with the tiles of each table: sm_90's 227 KB; the sm_80 tables also
# serve sm_86, sm_89 and sm_120 (fastattn.backends._device.tile_arch), whose blocks get 99 KB, not
# the A100's 163 KB.
MAX_SHARED_BYTES = {80: 99 * 1024, 90: 227 * 1024}


def signature(fn, types, constexprs):
    """Triton signature for `fn`: explicit `types` by argument name, "constexpr" for constexprs."""
    sig = {}
    for name in fn.arg_names:
        sig[name] = "constexpr" if name in constexprs else types[name]
    return sig


def compile_kernel(fn, types, constexprs, arch, num_warps, num_stages=None, divisible=(),
                   maxnreg=None):
    """Compile as a real launch would: 16-byte aligned pointers (Triton specialises on that), and
    the integer arguments named in `divisible` multiples of 16 (a launch specialises an integer
    that is one the same way; for row strides it decides whether loads are vectorised).
    num_stages=None keeps Triton's default pipeline depth; maxnreg as the launch's option."""
    sig = signature(fn, types, constexprs)
    aligned = {(i,): [["tt.divisibility", 16]] for i, name in enumerate(fn.arg_names)
               if sig[name].startswith("*") or name in divisible}
    source = ASTSource(fn, sig, constexprs, aligned)
    options = {"num_warps": num_warps}
    if num_stages is not None:
        options["num_stages"] = num_stages
    if maxnreg is not None:
        options["maxnreg"] = maxnreg
    return triton.compile(source, target=GPUTarget("cuda", arch, 32), options=options)


def _cuobjdump():
    return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")


def _cuobjdump_output(cubin, option):
    """cuobjdump's stdout for a cubin (bytes) and one option (--dump-resource-usage, -sass)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "kernel.cubin")
        with open(path, "wb") as f:
            f.write(cubin)
        return subprocess.run([_cuobjdump(), option, path], check=True, capture_output=True,
                              text=True).stdout


def resource_usage(kernel):
    """{"REG": n, "STACK": bytes, "LOCAL": bytes, "SHARED": bytes} of the compiled cubin."""
    report = _cuobjdump_output(kernel.asm["cubin"], "--dump-resource-usage")
    fields = dict(re.findall(r"\b(REG|STACK|LOCAL|SHARED):(\d+)", report))
    if "REG" not in fields:
        raise AssertionError(f"no resource line in the cuobjdump report:\n{report}")
    return {key: int(value) for key, value in fields.items()}


def cubin_sass(cubin):
    """cuobjdump's SASS listing of a cubin (bytes)."""
    return _cuobjdump_output(cubin, "-sass")


_INSTRUCTION = re.compile(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);")
_BRANCH_TARGET = re.compile(r"\bBRA\b.*?(0x[0-9a-f]+)")


def sass_counts(sass):
    """{function: {"instructions", "mufu", "loops"}} of a SASS listing: static instruction counts,
    MUFU (exp2, rcp, ...) among them, and the length of each loop body, found as the span from a
    backward branch's target to the branch. Nested loops give both spans; an inner branch that
    jumps back within a loop body (a row batch's early exit, say) counts as a loop of its own."""
    functions = {}
    for part in re.split(r"\n\s*Function : ", sass)[1:]:
        name = part.split("\n", 1)[0].strip()
        lines = [(int(address, 16), text.strip()) for address, text in _INSTRUCTION.findall(part)]
        loops = []
        for address, text in lines:
            target = _BRANCH_TARGET.search(text)
            if target and int(target.group(1), 16) < address:
                start = int(target.group(1), 16)
                loops.append(sum(1 for other, _ in lines if start <= other <= address))
        functions[name] = {"instructions": len(lines),
                           "mufu": sum("MUFU" in text for _, text in lines), "loops": loops}
    return functions


def check_usage(usage, shared, arch, label):
    """Fails on register spills (stack or local memory) or more shared memory than an SM holds."""
    assert usage["STACK"] == 0 and usage.get("LOCAL", 0) == 0, (
        f"{label} on sm_{arch} spills registers: {usage}")
    assert shared <= MAX_SHARED_BYTES[arch], f"{label} on sm_{arch} needs {shared} B shared memory"


def assert_no_spills(kernel, arch, label):
    usage = resource_usage(kernel)
    check_usage(usage, kernel.metadata.shared, arch, label)
    return usage


def compile_workers():
    """Processes for parallel compiles: the CPUs this process may use, or FASTATTN_COMPILE_WORKERS.
    A compile is single-threaded (LLVM in process, then ptxas), so the workers use every core CI's
    2-core machines have."""
    return int(os.environ.get("FASTATTN_COMPILE_WORKERS", len(os.sched_getaffinity(0))))


@contextlib.contextmanager
def parallel_builds(build, keys):
    """Yields {key: Future of build(key)}, every build started at once in compile_workers()
    processes, so that a test waiting on its own key overlaps with the builds of the tests after
    it. `build` returns something picklable (a report, not the kernel). The workers are forked:
    they inherit the imported kernels and the test module's tables. With one worker the builds run
    in this process, when their result is asked for."""
    workers = compile_workers()
    if workers <= 1:
        yield {key: _Deferred(build, key) for key in keys}
        return
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        futures = {key: pool.submit(build, key) for key in keys}
        try:
            yield futures
        finally:
            for future in futures.values():
                future.cancel()


class _Deferred:
    """The Future interface of a build run in this process on demand."""

    def __init__(self, build, key):
        self._build, self._key = build, key

    def result(self):
        return self._build(self._key)
