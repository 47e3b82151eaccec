"""What Triton's own launch path costs the host per kernel launch, measured without a GPU.

    python -m benchmarks.triton_launch_cost [--calls N]

`kernel[grid](...)` runs Triton's Python launcher (JITFunction.run: binding and specialising every
argument, the compiled-kernel cache key, global-value checks, the grid) before its C launcher and
the driver call. benchmarks/host_overhead.py stubs the whole launch on CPU, so it leaves this part
out; here it is put back. A fake driver (device 0, stream 0, an sm_90 target) and a compiled-kernel
cache that always hits a do-nothing kernel let the real JITFunction.run execute on CPU tensors
through fastattn's own Triton wrappers. Each wrapper is timed twice, with the real launcher and
with the launch replaced by a no-op: the difference is Triton's share per launch. What is left out
still: the C launcher (packing the arguments) and the driver's launch call, a few microseconds
each on a GPU machine.

This reaches into Triton internals (the driver's set_active, JITFunction.create_binder and the
per-device cache tuple, the same in triton 3.6 and 3.8): a development tool, not part of the
package. It must run in its own process (it replaces the active driver); Triton must not be in
interpreter mode.
"""

import argparse
import timeit

import torch

ARCH = 90


class _FakeDriver:
    """Just what JITFunction.run and create_binder ask of the active driver."""

    def get_current_device(self):
        return 0

    def get_current_stream(self, device=None):
        return 0

    def get_current_target(self):
        from triton.backends.compiler import GPUTarget

        return GPUTarget("cuda", ARCH, 32)


class _DoNothingKernel:
    function = 0
    packed_metadata = None

    def launch_metadata(self, *args):
        return None

    def run(self, *args):
        return None


class _AlwaysHit(dict):
    """A compiled-kernel cache in which every specialisation is already compiled."""

    def get(self, key, default=None):
        return _DoNothingKernel()


class _NoLaunch:
    def __getitem__(self, grid):
        return lambda *args, **kwargs: None


def _cases():
    """name -> (backend module, kernel attribute, launches per call, call)."""
    from fastattn.backends import triton_attention, triton_ffn, triton_layer_norm

    half = torch.float16
    q = torch.randn(128, 12, 64, dtype=half)
    cu = torch.tensor([0, 128], dtype=torch.int32)
    x, w = torch.randn(128, 768, dtype=half), torch.randn(768, dtype=half)
    w1, b1 = torch.randn(3072, 768, dtype=half), torch.randn(3072, dtype=half)
    w2 = torch.randn(768, 3072, dtype=half)
    return {
        "attention_varlen fwd": (triton_attention, "attention_fwd_kernel", 1, lambda: (
            triton_attention.attention_fwd(q, q, q, None, cu, cu, 128, 128, False, 0.125, 0.0,
                                           None))),
        "layer_norm_residual fwd": (triton_layer_norm, "layer_norm_residual_fwd_kernel", 1, lambda: (
            triton_layer_norm.layer_norm_residual_fwd(x, x, w, w, 1e-5, 0.0, None, False))),
        "ffn fwd (2 GEMMs)": (triton_ffn, "ffn_matmul_kernel", 2, lambda: (
            triton_ffn.ffn_fwd(x, w1, b1, w2, w, "none", 0.0, None, False))),
    }


def measure(calls=2000):
    """Yields (case, us per call with Triton's launcher, us without a launch, launches per call)."""
    from triton.runtime import driver

    driver.set_active(_FakeDriver())
    for name, (module, attribute, launches, call) in _cases().items():
        kernel = getattr(module, attribute)
        _cache, key_cache, target, backend, binder = kernel.create_binder()
        kernel.device_caches[0] = (_AlwaysHit(), key_cache, target, backend, binder)
        call()
        # Rounds of each alternate, best of 5 each: a change in this machine's load between the
        # two measurements (CI runs tests beside this) then weighs on both alike.
        with_launcher = without = float("inf")
        for _ in range(5):
            with_launcher = min(with_launcher, timeit.timeit(call, number=calls))
            setattr(module, attribute, _NoLaunch())
            try:
                without = min(without, timeit.timeit(call, number=calls))
            finally:
                setattr(module, attribute, kernel)
        yield name, with_launcher / calls * 1e6, without / calls * 1e6, launches


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)
    import triton

    print(f"triton {triton.__version__}, torch {torch.__version__}, fake sm_{ARCH} driver; host "
          "microseconds per call of fastattn's Triton wrapper")
    print(f"{'case':26s}{'with launcher':>15s}{'no launch':>11s}{'Triton per launch':>19s}")
    for name, with_launcher, without, launches in measure(args.calls):
        print(f"{name:26s}{with_launcher:15.1f}{without:11.1f}{(with_launcher - without) / launches:19.1f}",
              flush=True)


if __name__ == "__main__":
    main()
