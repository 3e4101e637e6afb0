// CPU backend of meta_rnn_sequence: the shared driver with an at::parallel_for
// elementwise pass over the cell math of csrc/cell_math.h.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include "../../cell_math.h"
#include "../meta_rnn_sequence.h"

namespace dynamo_ext {
namespace ops {
namespace {

constexpr int64_t kGrain = 8192;

struct CpuPointwise {
  static void tanh_forward(const at::Tensor& pre, at::Tensor& h) {
    AT_DISPATCH_FLOATING_TYPES(pre.scalar_type(), "meta_rnn_sequence_tanh_forward_cpu", [&] {
      const scalar_t* a = pre.const_data_ptr<scalar_t>();
      scalar_t* out = h.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, pre.numel(), kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) out[i] = cell::tanh_cell_forward(a[i]);
      });
    });
  }

  static void tanh_backward(const at::Tensor& grad_out, const at::Tensor& grad_rec,
                            const at::Tensor& h, at::Tensor& grad_pre) {
    AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "meta_rnn_sequence_tanh_backward_cpu", [&] {
      const scalar_t* go = grad_out.const_data_ptr<scalar_t>();
      const scalar_t* gr = grad_rec.const_data_ptr<scalar_t>();
      const scalar_t* z = h.const_data_ptr<scalar_t>();
      scalar_t* out = grad_pre.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, h.numel(), kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) out[i] = cell::tanh_cell_backward(go[i], gr[i], z[i]);
      });
    });
  }
};

ForwardResult forward_cpu(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& cond,
                          const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
                          const at::Tensor& b_hh, c10::string_view cell) {
  return sequence_forward<CpuPointwise>(x, h0, cond, w_ih, w_hh, b_ih, b_hh, cell);
}

BackwardResult backward_cpu(const at::Tensor& grad_h, const at::Tensor& x, const at::Tensor& h0,
                            const at::Tensor& h_all, const at::Tensor& workspace,
                            const at::Tensor& w_ih, const at::Tensor& w_hh, c10::string_view cell) {
  return sequence_backward<CpuPointwise>(grad_h, x, h0, h_all, workspace, w_ih, w_hh, cell);
}

}  // namespace

TORCH_LIBRARY_IMPL(dynamo_ext, CPU, m) {
  m.impl("meta_rnn_sequence", &forward_cpu);
  m.impl("meta_rnn_sequence_backward", &backward_cpu);
}

}  // namespace ops
}  // namespace dynamo_ext
