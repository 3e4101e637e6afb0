// Cell math shared by the CPU and CUDA kernels of dynamo_ext.
//
// Every function here is a scalar, branch-free __host__ __device__ inline
// function of one hidden unit, so that the CPU loops (csrc/ops/cpu) and the
// CUDA pointwise kernels (csrc/ops/cuda) compute bit-for-bit the same formula.
// Framework glue (tensors, dispatch, GEMMs) lives in csrc/ops; only the
// per-unit arithmetic lives here (haste's separation of cell math and glue).
//
// Tanh cell (DESIGN.md section 1, arXiv:2302.14078):
//   a_t = W_x x_t + b_ih + b_hh + U theta + W_h z_{t-1}
//   z_t = tanh(a_t)
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define DYNAMO_HD __host__ __device__ __forceinline__
#else
#define DYNAMO_HD inline
#endif

namespace dynamo_ext {
namespace cell {

template <typename T>
DYNAMO_HD T tanh_(T a) {
#if defined(__CUDA_ARCH__)
  return ::tanh(a);
#else
  return std::tanh(a);
#endif
}

// Forward of the tanh cell for one unit: z = tanh(a), a the full pre-activation.
template <typename T>
DYNAMO_HD T tanh_cell_forward(T pre_activation) {
  return tanh_(pre_activation);
}

// Backward of the tanh cell for one unit.
//   grad_out: dL/dz_t from the loss at step t (the op's output gradient)
//   grad_rec: dL/dz_t flowing back from step t+1 through W_h
//   z:        the cell's output z_t
// Returns dL/da_t = (grad_out + grad_rec) * (1 - z^2).
template <typename T>
DYNAMO_HD T tanh_cell_backward(T grad_out, T grad_rec, T z) {
  return (grad_out + grad_rec) * (T(1) - z * z);
}

}  // namespace cell
}  // namespace dynamo_ext
