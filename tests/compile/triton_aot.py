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


def flag_variants(names):
    """(label suffix, {name: bool}) for every on/off combination of the compile-time flags `names`.
    Which variant is the most register-hungry is not predictable (a kernel with fewer features
    spilled where the one with all of them fitted, 2026-12-08), so the tier builds them all."""
    for bits in range(1 << len(names)):
        flags = {name: bool(bits >> i & 1) for i, name in enumerate(names)}
        yield "+".join(name.lower() for name, on in flags.items() if on) or "none", flags


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


@contextlib.contextmanager
def module_builds(request, build, names):
    """parallel_builds of every build the tests of request's module ask for in this session, keyed
    by the values of the test parameters `names` (a tuple of them; the value itself for one name);
    tests without those parameters build nothing. For a module-scoped fixture, so that each test
    waits only for its own report while the builds of the tests after it go on."""
    keys = []
    for item in request.session.items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if item.module is request.module and all(name in params for name in names):
            values = tuple(params[name] for name in names)
            keys.append(values[0] if len(names) == 1 else values)
    with parallel_builds(build, list(dict.fromkeys(keys))) as futures:
        yield futures


def build_usage(compiled):
    """What check_usage needs of a compiled kernel, picklable for a worker to send back."""
    return {"usage": resource_usage(compiled), "shared": compiled.metadata.shared}


def build_table_entry(table, types_of, key):
    """build_usage of the (variant, dtype, arch) `key` of a table {variant: (kernel, constexprs,
    num_warps)}, the argument types from types_of(dtype)."""
    variant, dtype, arch = key
    fn, constexprs, num_warps = table[variant]
    return build_usage(compile_kernel(fn, types_of(dtype), constexprs, arch, num_warps))


class _Deferred:
    """The Future interface of a build run in this process on demand."""

    def __init__(self, build, key):
        self._build, self._key = build, key

    def result(self):
        return self._build(self._key)
