// CUDA backend of meta_rnn_sequence: the shared driver (cuBLAS GEMMs through
// ATen) with fused pointwise kernels over the cell math of csrc/cell_math.h.
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include "../../cell_math.h"
#include "../meta_rnn_sequence.h"

namespace dynamo_ext {
namespace ops {
namespace {

constexpr int kThreads = 256;

inline unsigned int blocks_for(int64_t n) {
  return static_cast<unsigned int>((n + kThreads - 1) / kThreads);
}

template <typename scalar_t>
__global__ void tanh_forward_kernel(const scalar_t* __restrict__ pre, scalar_t* __restrict__ h, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) h[i] = cell::tanh_cell_forward(pre[i]);
}

template <typename scalar_t>
__global__ void tanh_backward_kernel(const scalar_t* __restrict__ grad_out, const scalar_t* __restrict__ grad_rec,
                                     const scalar_t* __restrict__ h, scalar_t* __restrict__ grad_pre, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) grad_pre[i] = cell::tanh_cell_backward(grad_out[i], grad_rec[i], h[i]);
}

struct CudaPointwise {
  static void tanh_forward(const at::Tensor& pre, at::Tensor& h) {
    const int64_t n = pre.numel();
    auto stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES(pre.scalar_type(), "meta_rnn_sequence_tanh_forward_cuda", [&] {
      tanh_forward_kernel<scalar_t><<<blocks_for(n), kThreads, 0, stream>>>(
          pre.const_data_ptr<scalar_t>(), h.mutable_data_ptr<scalar_t>(), n);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }

  static void tanh_backward(const at::Tensor& grad_out, const at::Tensor& grad_rec, const at::Tensor& h,
                            at::Tensor& grad_pre) {
    const int64_t n = h.numel();
    auto stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "meta_rnn_sequence_tanh_backward_cuda", [&] {
      tanh_backward_kernel<scalar_t><<<blocks_for(n), kThreads, 0, stream>>>(
          grad_out.const_data_ptr<scalar_t>(), grad_rec.const_data_ptr<scalar_t>(), h.const_data_ptr<scalar_t>(),
          grad_pre.mutable_data_ptr<scalar_t>(), n);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

ForwardResult forward_cuda(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& cond,
                           const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
                           const at::Tensor& b_hh, c10::string_view cell) {
  const c10::cuda::CUDAGuard guard(x.device());
  return sequence_forward<CudaPointwise>(x, h0, cond, w_ih, w_hh, b_ih, b_hh, cell);
}

BackwardResult backward_cuda(const at::Tensor& grad_h, const at::Tensor& x, const at::Tensor& h0,
                             const at::Tensor& h_all, const at::Tensor& workspace, const at::Tensor& w_ih,
                             const at::Tensor& w_hh, c10::string_view cell) {
  const c10::cuda::CUDAGuard guard(x.device());
  return sequence_backward<CudaPointwise>(grad_h, x, h0, h_all, workspace, w_ih, w_hh, cell);
}

}  // namespace

TORCH_LIBRARY_IMPL(dynamo_ext, CUDA, m) {
  m.impl("meta_rnn_sequence", &forward_cuda);
  m.impl("meta_rnn_sequence_backward", &backward_cuda);
}

}  // namespace ops
}  // namespace dynamo_ext
