// CUDA backend of meta_rnn_sequence: the shared driver (cuBLAS GEMMs through ATen) with the
// fused pointwise kernels of meta_rnn_sequence_device.cuh, launched on the current stream.
#include <c10/cuda/CUDAGuard.h>

#include "launch.cuh"
#include "meta_rnn_sequence_device.cuh"

namespace dynamo_ext {
namespace ops {
namespace {

using CudaBackend = meta_rnn_device::PointwiseBackend<CudaLaunch>;

ForwardResult forward_cuda(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& cond,
                           const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
                           const at::Tensor& b_hh, c10::string_view cell,
                          bool save_workspace) {
  const c10::cuda::CUDAGuard guard(x.device());
  return sequence_forward<CudaBackend>(x, h0, cond, w_ih, w_hh, b_ih, b_hh, cell, save_workspace);
}

BackwardResult backward_cuda(const at::Tensor& grad_h, const at::Tensor& x, const at::Tensor& h0,
                             const at::Tensor& h_all, const at::Tensor& workspace, const at::Tensor& w_ih,
                             const at::Tensor& w_hh, c10::string_view cell, bool need_grad_x) {
  const c10::cuda::CUDAGuard guard(x.device());
  return sequence_backward<CudaBackend>(grad_h, x, h0, h_all, workspace, w_ih, w_hh, cell, need_grad_x);
}

}  // namespace

TORCH_LIBRARY_IMPL(dynamo_ext, CUDA, m) {
  m.impl("meta_rnn_sequence", &forward_cuda);
  m.impl("meta_rnn_sequence_backward", &backward_cuda);
}

}  // namespace ops
}  // namespace dynamo_ext
