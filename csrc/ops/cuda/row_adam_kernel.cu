// CUDA backend of row_adam_: the device guard and the launch; the kernel is in row_adam_device.cuh.
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "launch.cuh"
#include "row_adam_device.cuh"

namespace dynamo_ext {
namespace ops {
namespace {

void row_adam_cuda(at::Tensor& param, at::Tensor& exp_avg, at::Tensor& exp_avg_sq, const at::Tensor& grad,
                   const at::Tensor& rows, const at::Tensor& steps, double lr, double beta1, double beta2, double eps) {
  const c10::cuda::CUDAGuard guard(param.device());
  row_adam_device::row_adam_driver<CudaLaunch>(param, exp_avg, exp_avg_sq, grad, rows, steps, lr, beta1, beta2, eps);
}

}  // namespace

TORCH_LIBRARY_IMPL(dynamo_ext, CUDA, m) {
  m.impl("row_adam_", &row_adam_cuda);
}

}  // namespace ops
}  // namespace dynamo_ext
