// CUDA backend of newton_fixed_points: the device's shared-memory limit and stream; the
// checks, the launch and the kernel with its rule are in newton_fixed_points_device.cuh (one thread block per
// candidate, the CPU backend's rule, the cell math of csrc/cell_math.h).
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "launch.cuh"
#include "newton_fixed_points_device.cuh"

namespace dynamo_ext {
namespace ops {
namespace {

NewtonResult newton_cuda(const at::Tensor& z0, const at::Tensor& x, const at::Tensor& cond, const at::Tensor& w_ih,
                         const at::Tensor& w_hh, const at::Tensor& b_ih, const at::Tensor& b_hh,
                         c10::string_view cell, double tol, int64_t max_iter, bool return_jacobian,
                         double min_progress) {
  check_newton_inputs(z0, x, cond, w_ih, w_hh, b_ih, b_hh, cell, tol, max_iter, min_progress);
  const c10::cuda::CUDAGuard guard(z0.device());
  const size_t smem_limit = at::cuda::getCurrentDeviceProperties()->sharedMemPerBlockOptin;
  return newton_device::newton_driver<CudaLaunch>(z0, x, cond, w_ih, w_hh, b_ih, b_hh, cell, tol, max_iter,
                                                  return_jacobian, min_progress, smem_limit);
}

}  // namespace

TORCH_LIBRARY_IMPL(dynamo_ext, CUDA, m) {
  m.impl("newton_fixed_points", &newton_cuda);
}

}  // namespace ops
}  // namespace dynamo_ext
