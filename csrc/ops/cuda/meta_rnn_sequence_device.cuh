// Device code of meta_rnn_sequence on CUDA: the fused pointwise kernels (one thread per
// (row, hidden unit), the cell math of csrc/cell_math.h) and the backend policy that launches
// them from the shared driver (csrc/ops/meta_rnn_sequence.h). The launch itself is a template
// parameter, so that the same code also runs under tests/cuda_emulation on the host.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include "../../cell_math.h"
#include "../meta_rnn_sequence.h"

namespace dynamo_ext {
namespace ops {
namespace meta_rnn_device {

constexpr int kThreads = 256;

inline unsigned int blocks_for(int64_t n) {
  return static_cast<unsigned int>((n + kThreads - 1) / kThreads);
}

__device__ __forceinline__ int64_t thread_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}

template <typename T>
__global__ void tanh_forward_kernel(const T* __restrict__ pre, const T* __restrict__ cond, T* __restrict__ h,
                                    int64_t n) {
  const int64_t i = thread_index();
  if (i < n) h[i] = cell::tanh_cell_forward(pre[i] + cond[i]);
}

template <typename T>
__global__ void tanh_backward_kernel(const T* __restrict__ grad_out, const T* __restrict__ grad_rec,
                                     const T* __restrict__ h, T* __restrict__ grad_pre, T* __restrict__ cond_acc,
                                     int64_t n) {
  const int64_t i = thread_index();
  if (i >= n) return;
  const T da = cell::tanh_cell_backward(grad_out[i], grad_rec[i], h[i]);
  grad_pre[i] = da;
  cond_acc[i] += da;
}

// gi [B, 3D] = W_ih x_t; row_bias [B, 3D] = cond + b_ih; gh [B, 3D] = W_hh z_prev;
// ws [B, 4D] receives (r, u, n, W_hn z_prev + b_hn).
template <typename T>
__global__ void gru_forward_kernel(const T* __restrict__ gi, const T* __restrict__ row_bias,
                                   const T* __restrict__ gh, const T* __restrict__ b_hh,
                                   const T* __restrict__ h_prev, T* __restrict__ h, T* __restrict__ ws, int64_t n,
                                   int64_t D) {
  const int64_t i = thread_index();
  if (i >= n) return;
  const int64_t b = i / D, j = i % D;
  const T* x3 = gi + b * 3 * D;
  T* w = ws + b * 4 * D;
  const T* c = row_bias + b * 3 * D;
  const T* g = gh + b * 3 * D;
  const T ghn = g[2 * D + j] + b_hh[2 * D + j];
  T r, u, cand, z;
  cell::gru_cell_forward(x3[j] + c[j], x3[D + j] + c[D + j], x3[2 * D + j] + c[2 * D + j], g[j] + b_hh[j],
                         g[D + j] + b_hh[D + j], ghn, h_prev[i], r, u, cand, z);
  w[j] = r;
  w[D + j] = u;
  w[2 * D + j] = cand;
  w[3 * D + j] = ghn;
  h[i] = z;
}

// grad_rec: in dL/dz_t from step t+1, out the direct part dL/dz_t * u of dL/dz_{t-1}
template <typename T>
__global__ void gru_backward_kernel(const T* __restrict__ grad_out, T* __restrict__ grad_rec,
                                    const T* __restrict__ ws, const T* __restrict__ h_prev, T* __restrict__ d_gi,
                                    T* __restrict__ d_gh, T* __restrict__ cond_acc, T* __restrict__ hn_acc, int64_t n,
                                    int64_t D) {
  const int64_t i = thread_index();
  if (i >= n) return;
  const int64_t b = i / D, j = i % D;
  const T* w = ws + b * 4 * D;
  T* gi = d_gi + b * 3 * D;
  T* gh = d_gh + b * 3 * D;
  T* acc = cond_acc + b * 3 * D;
  T dxr, dxu, dxn, dhn, dhp;
  cell::gru_cell_backward(grad_out[i], grad_rec[i], w[j], w[D + j], w[2 * D + j], w[3 * D + j], h_prev[i], dxr, dxu,
                          dxn, dhn, dhp);
  gi[j] = dxr;
  gi[D + j] = dxu;
  gi[2 * D + j] = dxn;
  gh[j] = dxr;
  gh[D + j] = dxu;
  gh[2 * D + j] = dhn;
  grad_rec[i] = dhp;
  acc[j] += dxr;
  acc[D + j] += dxu;
  acc[2 * D + j] += dxn;
  hn_acc[i] += dhn;
}

// The backend policy of the shared driver (meta_rnn_sequence.h) on the device: every step's
// pointwise pass is one kernel launch over all rows. Launch::run(kernel, blocks, threads,
// shared_bytes, args...) launches (CudaLaunch of launch.cuh; the emulation's own under
// tests/cuda_emulation).
template <class Launch>
struct PointwiseBackend {
  static at::Tensor empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
    return at::empty(sizes, options);
  }

  // one block of all rows: the device runs each step's GEMMs and kernels over the whole batch
  static int64_t row_blocks(int64_t) { return 1; }

  template <class F>
  static void for_each_block(int64_t count, const F& f) {
    for (int64_t i = 0; i < count; ++i) f(i);
  }

  static void tanh_forward(const at::Tensor& pre, const at::Tensor& cond, at::Tensor& h) {
    const int64_t n = h.numel();
    AT_DISPATCH_FLOATING_TYPES(pre.scalar_type(), "meta_rnn_sequence_tanh_forward_cuda", [&] {
      Launch::run(tanh_forward_kernel<scalar_t>, blocks_for(n), kThreads, 0,
          pre.const_data_ptr<scalar_t>(), cond.const_data_ptr<scalar_t>(), h.mutable_data_ptr<scalar_t>(), n);
    });
  }

  static void tanh_backward(const at::Tensor& grad_out, const at::Tensor& grad_rec, const at::Tensor& h,
                            at::Tensor& grad_pre, at::Tensor& cond_acc) {
    const int64_t n = h.numel();
    AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "meta_rnn_sequence_tanh_backward_cuda", [&] {
      Launch::run(tanh_backward_kernel<scalar_t>, blocks_for(n), kThreads, 0,
          grad_out.const_data_ptr<scalar_t>(), grad_rec.const_data_ptr<scalar_t>(), h.const_data_ptr<scalar_t>(),
          grad_pre.mutable_data_ptr<scalar_t>(), cond_acc.mutable_data_ptr<scalar_t>(), n);
    });
  }

  static void gru_forward(const at::Tensor& gi, const at::Tensor& row_bias, const at::Tensor& gh,
                          const at::Tensor& b_hh, const at::Tensor& h_prev, at::Tensor& h, at::Tensor& ws) {
    const int64_t n = h.numel(), D = h.size(1);
    AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "meta_rnn_sequence_gru_forward_cuda", [&] {
      Launch::run(gru_forward_kernel<scalar_t>, blocks_for(n), kThreads, 0,
          gi.const_data_ptr<scalar_t>(), row_bias.const_data_ptr<scalar_t>(), gh.const_data_ptr<scalar_t>(),
          b_hh.const_data_ptr<scalar_t>(), h_prev.const_data_ptr<scalar_t>(), h.mutable_data_ptr<scalar_t>(),
          ws.mutable_data_ptr<scalar_t>(), n, D);
    });
  }

  static void gru_backward(const at::Tensor& grad_out, at::Tensor& grad_rec, const at::Tensor& ws,
                           const at::Tensor& h_prev, at::Tensor& d_gi, at::Tensor& d_gh, at::Tensor& cond_acc,
                           at::Tensor& hn_acc) {
    const int64_t n = h_prev.numel(), D = h_prev.size(1);
    AT_DISPATCH_FLOATING_TYPES(h_prev.scalar_type(), "meta_rnn_sequence_gru_backward_cuda", [&] {
      Launch::run(gru_backward_kernel<scalar_t>, blocks_for(n), kThreads, 0,
          grad_out.const_data_ptr<scalar_t>(), grad_rec.mutable_data_ptr<scalar_t>(), ws.const_data_ptr<scalar_t>(),
          h_prev.const_data_ptr<scalar_t>(), d_gi.mutable_data_ptr<scalar_t>(), d_gh.mutable_data_ptr<scalar_t>(),
          cond_acc.mutable_data_ptr<scalar_t>(), hn_acc.mutable_data_ptr<scalar_t>(), n, D);
    });
  }
};

}  // namespace meta_rnn_device
}  // namespace ops
}  // namespace dynamo_ext
