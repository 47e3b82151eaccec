// The element types the CUDA kernels take, named without CUDA or torch headers so that every
// launcher header (and bindings.cpp, the torch side) can share one enum.
#pragma once

namespace fastattn {

enum class ElementType { kFloat32, kFloat16, kBFloat16 };

}  // namespace fastattn
