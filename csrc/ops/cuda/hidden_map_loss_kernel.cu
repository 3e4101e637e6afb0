// CUDA backend of hidden_map_loss: the device guard and the launches; the kernels are in
// hidden_map_loss_device.cuh.
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "hidden_map_loss_device.cuh"
#include "launch.cuh"

namespace dynamo_ext {
namespace ops {
namespace {

std::tuple<at::Tensor, at::Tensor> hidden_map_loss_cuda(const at::Tensor& z, const at::Tensor& table,
                                                        const at::Tensor& map_row, const at::Tensor& width,
                                                        const at::Tensor& targets, const at::Tensor& target_start) {
  const c10::cuda::CUDAGuard guard(z.device());
  return hidden_map_device::forward_driver<CudaLaunch>(z, table, map_row, width, targets, target_start);
}

std::tuple<at::Tensor, at::Tensor> hidden_map_loss_backward_cuda(const at::Tensor& grad, const at::Tensor& z,
                                                                 const at::Tensor& table, const at::Tensor& map_row,
                                                                 const at::Tensor& width, const at::Tensor& residual,
                                                                 bool need_grad_z) {
  const c10::cuda::CUDAGuard guard(z.device());
  return hidden_map_device::backward_driver<CudaLaunch>(grad, z, table, map_row, width, residual, need_grad_z);
}

}  // namespace

TORCH_LIBRARY_IMPL(dynamo_ext, CUDA, m) {
  m.impl("hidden_map_loss", &hidden_map_loss_cuda);
  m.impl("hidden_map_loss_backward", &hidden_map_loss_backward_cuda);
}

}  // namespace ops
}  // namespace dynamo_ext
