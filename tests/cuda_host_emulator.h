// Runs CUDA kernels from csrc/ on the host (g++), so that their logic is checked where there is no
// GPU: each CUDA thread of a block is a coroutine (ucontext) and the block's threads take turns on
// one OS thread, switching only at __syncthreads and __shfl_xor_sync, the points where CUDA
// threads meet. Blocks run one after another. What this catches: indexing, masking, the
// online-softmax and split bookkeeping, a barrier or shuffle not reached by every thread (reported,
// not hung). What it cannot: timing, memory-model races between blocks, the device's float
// rounding in its intrinsics, out-of-bounds reads that happen to land in host memory.
//
// Include it before the kernel header. `__shared__` variables become function statics: one copy
// for all threads, as a block's shared memory (and blocks never run at once here). A whole .cu file
// (kernels and their launchers) runs here once tests/host_cxx.emulated_cuda_source has rewritten
// its `kernel<<<grid, block, shared, stream>>>(args)` launches into `cuda_host_emulator::chevron`
// calls and its `extern __shared__` arrays into the launch's dynamic shared memory; the few runtime
// API calls launchers make are answered below as an H100 would.
#pragma once

// dim3 and uint3; the __global__ / __device__ markers as a host compiler reads them.
#include <cuda_runtime.h>
#include <math.h>  // what device code gets without an include: fmaxf, exp2f, INFINITY, ...
#include <ucontext.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <type_traits>
#include <vector>

#undef __shared__
#define __shared__ static
#define __launch_bounds__(...)

namespace cuda_host_emulator {

constexpr int kWarp = 32;
constexpr size_t kStackBytes = 256 * 1024;

struct Barrier {
  long arrived = 0, generation = 0, exited = 0;
};

struct BlockState {
  ucontext_t scheduler;
  std::vector<max_align_t> dynamic_shared;
  std::vector<ucontext_t> contexts;
  // Left uninitialised (new char[]): the pages a coroutine never touches cost nothing.
  std::vector<std::unique_ptr<char[]>> stacks;
  std::vector<char> done;
  std::vector<uint32_t> shuffle_slots;
  std::vector<Barrier> warps;
  Barrier block;
  std::function<void()> body;
  int current = 0, threads = 0;
};

inline BlockState state;

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "cuda_host_emulator: %s (thread %d)\n", what, state.current);
  std::abort();
}

inline void yield() { swapcontext(&state.contexts[state.current], &state.scheduler); }

// Waits until `count` threads have arrived; a thread that exited never will: that is a hang on a
// GPU (or undefined behaviour), reported here.
inline void arrive_and_wait(Barrier& barrier, int count) {
  const long generation = barrier.generation;
  if (++barrier.arrived == count) {
    barrier.arrived = 0;
    ++barrier.generation;
    return;
  }
  while (barrier.generation == generation) {
    if (barrier.arrived + barrier.exited >= count) {
      fail("barrier or shuffle that an exited thread never reaches");
    }
    yield();
  }
}

inline void thread_main() {
  state.body();
  state.done[state.current] = 1;
  ++state.block.exited;
  ++state.warps[state.current / kWarp].exited;
}  // returns to uc_link: the scheduler

}  // namespace cuda_host_emulator

namespace cuda_host_emulator {

// CUDA's device-side min and max, which emulated_cuda_source renames kernels' calls to: the
// global overloads CUDA's headers give a host compiler return 0 (their device builtins are not
// there).
template <typename A, typename B>
std::common_type_t<A, B> device_min(A a, B b) {
  return b < a ? b : a;
}
template <typename A, typename B>
std::common_type_t<A, B> device_max(A a, B b) {
  return a < b ? b : a;
}

}  // namespace cuda_host_emulator

// Device intrinsics the kernels call that a host compiler lacks (round-to-nearest is the host's
// rounding; the _rn forms exist on the device to keep nvcc from fusing them into FMAs).
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }

inline uint3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

inline void __syncthreads() {
  cuda_host_emulator::arrive_and_wait(cuda_host_emulator::state.block,
                                      cuda_host_emulator::state.threads);
}

template <typename V>
V __shfl_xor_sync(unsigned /*mask: the whole warp takes part*/, V value, int lane_mask) {
  static_assert(sizeof(V) == sizeof(uint32_t), "32-bit shuffles only");
  using namespace cuda_host_emulator;
  const int thread = state.current, warp = thread / kWarp;
  std::memcpy(&state.shuffle_slots[thread], &value, sizeof(V));
  arrive_and_wait(state.warps[warp], kWarp);  // every lane has written
  V result;
  std::memcpy(&result, &state.shuffle_slots[warp * kWarp + ((thread % kWarp) ^ lane_mask)],
              sizeof(V));
  arrive_and_wait(state.warps[warp], kWarp);  // every lane has read before the next write
  return result;
}

namespace cuda_host_emulator {

inline void* dynamic_shared() { return state.dynamic_shared.data(); }

// Runs kernel(args...) as a grid of blocks of `block` threads (whole warps: warps are runs of 32
// threads in x-fastest order, as on a GPU), with `shared_bytes` of dynamic shared memory.
template <typename Kernel, typename... Args>
void launch_with_shared(dim3 grid, dim3 block, size_t shared_bytes, Kernel kernel,
                        const Args&... args) {
  const int threads = static_cast<int>(block.x * block.y * block.z);
  if (threads % kWarp != 0) fail("blocks must be whole warps");
  gridDim = grid;
  blockDim = block;
  state.dynamic_shared.assign((shared_bytes + sizeof(max_align_t) - 1) / sizeof(max_align_t),
                              max_align_t{});
  state.threads = threads;
  state.contexts.resize(threads);
  state.stacks.resize(threads);
  state.shuffle_slots.assign(threads, 0);
  state.body = [&] { kernel(args...); };
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        blockIdx = uint3{x, y, z};
        state.done.assign(threads, 0);
        state.warps.assign(threads / kWarp, Barrier{});
        state.block = Barrier{};
        for (int t = 0; t < threads; ++t) {
          if (!state.stacks[t]) state.stacks[t].reset(new char[kStackBytes]);
          getcontext(&state.contexts[t]);
          state.contexts[t].uc_stack.ss_sp = state.stacks[t].get();
          state.contexts[t].uc_stack.ss_size = kStackBytes;
          state.contexts[t].uc_link = &state.scheduler;
          makecontext(&state.contexts[t], thread_main, 0);
        }
        for (bool running = true; running;) {
          running = false;
          for (int t = 0; t < threads; ++t) {
            if (state.done[t]) continue;
            running = true;
            state.current = t;
            threadIdx = uint3{t % block.x, t / block.x % block.y, t / (block.x * block.y)};
            swapcontext(&state.scheduler, &state.contexts[t]);
          }
        }
      }
}

template <typename Kernel, typename... Args>
void launch(dim3 grid, dim3 block, Kernel kernel, const Args&... args) {
  launch_with_shared(grid, block, 0, kernel, args...);
}

// `kernel<<<grid, block, shared, stream>>>(args...)`, as emulated_cuda_source rewrites it:
// `cuda_host_emulator::chevron(grid, block, shared, stream).run(kernel, args...)`.
struct Chevron {
  dim3 grid, block;
  size_t shared_bytes;
  template <typename Kernel, typename... Args>
  void run(Kernel kernel, const Args&... args) const {
    launch_with_shared(grid, block, shared_bytes, kernel, args...);
  }
};

inline Chevron chevron(dim3 grid, dim3 block, size_t shared_bytes = 0, cudaStream_t = nullptr) {
  return Chevron{grid, block, shared_bytes};
}

}  // namespace cuda_host_emulator

// The runtime API calls of the launchers, answered as an H100 would (no CUDA runtime is linked).
cudaError_t cudaGetLastError() { return cudaSuccess; }
cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attribute, int) {
  switch (attribute) {
    case cudaDevAttrMultiProcessorCount: *value = 132; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = 227 * 1024; break;
    default: *value = 0; return cudaErrorInvalidValue;
  }
  return cudaSuccess;
}
cudaError_t cudaFuncSetAttribute(const void*, cudaFuncAttribute, int) { return cudaSuccess; }
template <typename Function>  // the overload cuda_runtime.h gives nvcc only
cudaError_t cudaFuncSetAttribute(Function*, cudaFuncAttribute, int) {
  return cudaSuccess;
}
