// The plumbing shared by the host drivers that run csrc/ kernels under cuda_host_emulator.h (the
// tests/cpu/test_cuda_*_emulated.py files): a driver reads its inputs as float32 from a file,
// converts them to the element type under test, runs the launcher and writes every output back as
// float32. Include after the kernels (it uses common.cuh's conversions).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "common.cuh"
#include "element_type.h"

namespace emulated_driver {

template <typename T>
std::vector<T> typed(const std::vector<float>& values) {
  std::vector<T> out(values.size());
  for (size_t i = 0; i < values.size(); ++i) out[i] = fastattn::from_float<T>(values[i]);
  return out;
}

// An output buffer starting as NaN: an element a kernel forgets to write fails the comparison.
template <typename T>
std::vector<T> unwritten(size_t size) {
  return std::vector<T>(size, fastattn::from_float<T>(NAN));
}

template <typename V>
bool read(FILE* in, std::vector<V>& values) {
  return std::fread(values.data(), sizeof(V), values.size(), in) == values.size();
}

template <typename T>
void write(FILE* out, const std::vector<T>& values) {
  std::vector<float> floats(values.size());
  for (size_t i = 0; i < values.size(); ++i) floats[i] = fastattn::to_float(values[i]);
  std::fwrite(floats.data(), sizeof(float), floats.size(), out);
}

// `driver IN OUT`: reads kInts int64 (the first: 0 float32, 1 float16, 2 bfloat16) and kDoubles
// float64 from IN, then returns run(element, dtype, in, out, ints, doubles), `element` a value of
// the element type (for the run's template argument) and `dtype` its ElementType. 0 is success.
template <int kInts, int kDoubles, typename Run>
int main(int argc, char** argv, Run&& run) {
  if (argc != 3) return 1;
  FILE* in = std::fopen(argv[1], "rb");
  FILE* out = std::fopen(argv[2], "wb");
  long long ints[kInts];
  double doubles[kDoubles > 0 ? kDoubles : 1];
  if (in == nullptr || out == nullptr || std::fread(ints, 8, kInts, in) != kInts ||
      std::fread(doubles, 8, kDoubles, in) != static_cast<size_t>(kDoubles)) {
    return 1;
  }
  int status = 1;
  switch (ints[0]) {
    case 0: status = run(float{}, fastattn::ElementType::kFloat32, in, out, ints, doubles); break;
    case 1: status = run(__half{}, fastattn::ElementType::kFloat16, in, out, ints, doubles); break;
    case 2:
      status = run(__nv_bfloat16{}, fastattn::ElementType::kBFloat16, in, out, ints, doubles);
      break;
  }
  std::fclose(out);
  std::fclose(in);
  return status;
}

}  // namespace emulated_driver
