// Device code of hidden_map_loss on CUDA: the forward one block per row (threads over the row's T x d
// residuals, the block's sum of r^2 / d by a shared-memory tree); the backward one block per row for
// grad_z (threads over T x D) and for grad_table (threads over the map's d x (D + 1) entries, added
// with atomicAdd, so rows sharing a map add in no fixed order). Apart from the host glue
// (hidden_map_loss_kernel.cu) so that it also compiles for the host under tests/cuda_emulation, where
// CI checks it against the CPU op.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <cstdint>
#include <tuple>

#include "../hidden_map_loss.h"
#include "shared_memory.cuh"

namespace dynamo_ext {
namespace ops {
namespace hidden_map_device {

constexpr int kThreads = 256;  // a power of two (the tree sum)

template <typename T>
__global__ void forward_kernel(const T* z, const T* table, const int64_t* map_row, const int64_t* width,
                               const T* targets, const int64_t* target_start, const int64_t* offsets, T* residual,
                               double* loss_rows, int64_t steps, int64_t D) {
  DYNAMO_EXTERN_SHARED(smem_raw);
  double* partial = reinterpret_cast<double*>(smem_raw);
  const int64_t b = blockIdx.x, d = width[b];
  const T* zb = z + b * steps * D;
  const T* a = table + map_row[b] * (D + 1);
  const T* y = targets + target_start[b];
  T* r = residual + offsets[b];
  double sum = 0.0;
  for (int64_t e = threadIdx.x; e < steps * d; e += blockDim.x) {
    const int64_t t = e / d, i = e - t * d;
    const T* ai = a + i * (D + 1);
    const T* zt = zb + t * D;
    T v = ai[D];
    for (int64_t k = 0; k < D; ++k) v += ai[k] * zt[k];
    v -= y[e];
    r[e] = v;
    sum += static_cast<double>(v) * static_cast<double>(v);
  }
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) loss_rows[b] = partial[0] / static_cast<double>(d);
}

// grad_z[b, t, j] = (2 g / d) sum_i r_b[t, i] A[i, j]
template <typename T>
__global__ void grad_z_kernel(const T* grad, const T* table, const int64_t* map_row, const int64_t* width,
                              const int64_t* offsets, const T* residual, T* grad_z, int64_t steps, int64_t D) {
  const int64_t b = blockIdx.x, d = width[b];
  const T s = grad[0] * static_cast<T>(2) / static_cast<T>(d);
  const T* a = table + map_row[b] * (D + 1);
  const T* r = residual + offsets[b];
  for (int64_t e = threadIdx.x; e < steps * D; e += blockDim.x) {
    const int64_t t = e / D, j = e - t * D;
    T v = 0;
    for (int64_t i = 0; i < d; ++i) v += r[t * d + i] * a[i * (D + 1) + j];
    grad_z[b * steps * D + e] = s * v;
  }
}

// grad_table[map_row + i, j] += (2 g / d) sum_t r_b[t, i] z_b[t, j] (j < D), sum_t r_b[t, i] (j = D)
template <typename T>
__global__ void grad_table_kernel(const T* grad, const T* z, const int64_t* map_row, const int64_t* width,
                                  const int64_t* offsets, const T* residual, T* grad_table, int64_t steps, int64_t D) {
  const int64_t b = blockIdx.x, d = width[b];
  const T s = grad[0] * static_cast<T>(2) / static_cast<T>(d);
  const T* zb = z + b * steps * D;
  const T* r = residual + offsets[b];
  for (int64_t e = threadIdx.x; e < d * (D + 1); e += blockDim.x) {
    const int64_t i = e / (D + 1), j = e - i * (D + 1);
    T v = 0;
    for (int64_t t = 0; t < steps; ++t) v += r[t * d + i] * (j < D ? zb[t * D + j] : static_cast<T>(1));
    atomicAdd(grad_table + (map_row[b] + i) * (D + 1) + j, s * v);
  }
}

// Checks, then one launch (the residual's length, T x the sum of width, is read back to the host once;
// index values are trusted to be in range: checking them would need a copy to the host).
template <class Launch>
std::tuple<at::Tensor, at::Tensor> forward_driver(const at::Tensor& z, const at::Tensor& table,
                                                  const at::Tensor& map_row_in, const at::Tensor& width_in,
                                                  const at::Tensor& targets, const at::Tensor& target_start_in) {
  check_hidden_map_loss_inputs(z, table, map_row_in, width_in, targets, target_start_in);
  const at::Tensor map_row = map_row_in.contiguous(), width = width_in.contiguous();
  const at::Tensor target_start = target_start_in.contiguous();
  const int64_t B = z.size(0), T = z.size(1), D = z.size(2);
  const int64_t R = B ? width.sum().item<int64_t>() * T : 0;
  at::Tensor residual = at::empty({R}, z.options());
  at::Tensor loss_rows = at::zeros({B}, z.options().dtype(at::kDouble));
  if (B > 0) {
    const at::Tensor offsets = residual_offsets(width, T);
    AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "hidden_map_loss_cuda", [&] {
      Launch::run(forward_kernel<scalar_t>, static_cast<unsigned int>(B), kThreads, kThreads * sizeof(double),
                  z.data_ptr<scalar_t>(), table.data_ptr<scalar_t>(), map_row.data_ptr<int64_t>(),
                  width.data_ptr<int64_t>(), targets.data_ptr<scalar_t>(), target_start.data_ptr<int64_t>(),
                  offsets.data_ptr<int64_t>(), residual.data_ptr<scalar_t>(), loss_rows.data_ptr<double>(), T, D);
    });
  }
  return {loss_rows.sum().to(z.scalar_type()), residual};
}

template <class Launch>
std::tuple<at::Tensor, at::Tensor> backward_driver(const at::Tensor& grad, const at::Tensor& z,
                                                   const at::Tensor& table, const at::Tensor& map_row_in,
                                                   const at::Tensor& width_in, const at::Tensor& residual,
                                                   bool need_grad_z) {
  check_hidden_map_loss_backward_inputs(grad, z, table, map_row_in, width_in, residual);
  const at::Tensor map_row = map_row_in.contiguous(), width = width_in.contiguous();
  const int64_t B = z.size(0), T = z.size(1), D = z.size(2);
  at::Tensor grad_z = need_grad_z ? at::empty_like(z) : at::empty({0}, z.options());
  at::Tensor grad_table = at::zeros_like(table);
  if (B == 0) return {grad_z, grad_table};
  const at::Tensor offsets = residual_offsets(width, T);
  const at::Tensor g = grad.to(z.options()).contiguous();
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "hidden_map_loss_backward_cuda", [&] {
    if (need_grad_z)
      Launch::run(grad_z_kernel<scalar_t>, static_cast<unsigned int>(B), kThreads, 0, g.data_ptr<scalar_t>(),
                  table.data_ptr<scalar_t>(), map_row.data_ptr<int64_t>(), width.data_ptr<int64_t>(),
                  offsets.data_ptr<int64_t>(), residual.data_ptr<scalar_t>(), grad_z.data_ptr<scalar_t>(), T, D);
    Launch::run(grad_table_kernel<scalar_t>, static_cast<unsigned int>(B), kThreads, 0, g.data_ptr<scalar_t>(),
                z.data_ptr<scalar_t>(), map_row.data_ptr<int64_t>(), width.data_ptr<int64_t>(),
                offsets.data_ptr<int64_t>(), residual.data_ptr<scalar_t>(), grad_table.data_ptr<scalar_t>(), T, D);
  });
  return {grad_z, grad_table};
}

}  // namespace hidden_map_device
}  // namespace ops
}  // namespace dynamo_ext
