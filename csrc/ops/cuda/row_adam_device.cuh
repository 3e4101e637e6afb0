// Device code of row_adam_ on CUDA: one thread per element of the chosen rows, csrc/adam_math.h's
// update; apart from the host glue (row_adam_kernel.cu) so that it also compiles for the host under
// tests/cuda_emulation, where CI checks it against the CPU op.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <cstdint>

#include "../../adam_math.h"
#include "../row_adam.h"

namespace dynamo_ext {
namespace ops {
namespace row_adam_device {

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void row_adam_kernel(scalar_t* p, scalar_t* m, scalar_t* v, const scalar_t* g, const int64_t* rows,
                                const int64_t* steps, int64_t R, int64_t C, double lr, double beta1, double beta2,
                                double eps) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= R * C) return;
  const int64_t i = idx / C, j = idx - i * C;
  const adam::RowCorrection k = adam::row_correction(lr, beta1, beta2, steps[i]);
  const int64_t at = rows[i] * C + j;
  adam::update(p[at], m[at], v[at], g[idx], static_cast<scalar_t>(beta1), static_cast<scalar_t>(beta2),
               static_cast<scalar_t>(eps), static_cast<scalar_t>(k.step_size),
               static_cast<scalar_t>(k.correction2_sqrt));
}

// Checks, then one launch over the R x C elements (rows and steps are trusted to be in range and >= 1:
// checking them would need a copy to the host).
template <class Launch>
void row_adam_driver(at::Tensor& param, at::Tensor& exp_avg, at::Tensor& exp_avg_sq, const at::Tensor& grad,
                     const at::Tensor& rows, const at::Tensor& steps, double lr, double beta1, double beta2,
                     double eps) {
  check_row_adam_inputs(param, exp_avg, exp_avg_sq, grad, rows, steps, lr, beta1, beta2, eps);
  const int64_t R = rows.size(0), C = param.size(1);
  if (R == 0 || C == 0) return;
  const at::Tensor grad_c = grad.contiguous(), rows_c = rows.contiguous(), steps_c = steps.contiguous();
  const auto blocks = static_cast<unsigned int>((R * C + kThreads - 1) / kThreads);
  AT_DISPATCH_FLOATING_TYPES(param.scalar_type(), "row_adam_cuda", [&] {
    Launch::run(row_adam_kernel<scalar_t>, blocks, kThreads, 0, param.data_ptr<scalar_t>(),
                exp_avg.data_ptr<scalar_t>(), exp_avg_sq.data_ptr<scalar_t>(), grad_c.data_ptr<scalar_t>(),
                rows_c.data_ptr<int64_t>(), steps_c.data_ptr<int64_t>(), R, C, lr, beta1, beta2, eps);
  });
}

}  // namespace row_adam_device
}  // namespace ops
}  // namespace dynamo_ext
