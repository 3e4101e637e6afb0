// meta_rnn_sequence: the embedding-conditioned meta-RNN over a whole sequence.
//
// Schema (registered in registration.cpp):
//   meta_rnn_sequence(Tensor x, Tensor h0, Tensor cond, Tensor w_ih, Tensor w_hh,
//                     Tensor b_ih, Tensor b_hh, str cell) -> (Tensor h_all, Tensor workspace)
//   x [T, B, I] time-major inputs, h0 [B, D] initial meta state,
//   cond [B, G*D] per-row conditioning bias (U theta_n of the row's model),
//   w_ih [G*D, I], w_hh [G*D, D], b_ih [G*D], b_hh [G*D]; G = gates of the cell.
//   h_all [T, B, D] = z_1..z_T; workspace: what the backward needs beyond h_all
//   (empty [0] for the tanh cell).
//
// The device-generic driver below does the GEMMs through ATen (MKL/OpenBLAS on
// CPU, cuBLAS on CUDA) and hands the per-step elementwise pass to a backend
// `Pointwise` policy (cpu/ or cuda/), which applies csrc/cell_math.h.
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <string>
#include <tuple>

namespace dynamo_ext {
namespace ops {

enum class CellKind { Tanh };

CellKind parse_cell(c10::string_view cell);
int64_t gate_count(CellKind kind);

void check_forward_inputs(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& cond,
                          const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
                          const at::Tensor& b_hh, CellKind kind);

void check_backward_inputs(const at::Tensor& grad_h, const at::Tensor& x, const at::Tensor& h0,
                           const at::Tensor& h_all, const at::Tensor& w_ih, const at::Tensor& w_hh);

void define_meta_rnn_sequence(torch::Library& m);

using ForwardResult = std::tuple<at::Tensor, at::Tensor>;
// grad_x, grad_h0, grad_cond, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh
using BackwardResult =
    std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

// Forward over the whole sequence: one GEMM for the input projection of all
// steps, then per step one recurrent GEMM (accumulated in place into that
// step's pre-activation) and one fused elementwise pass.
template <class Pointwise>
ForwardResult sequence_forward(const at::Tensor& x_in, const at::Tensor& h0_in,
                               const at::Tensor& cond_in, const at::Tensor& w_ih,
                               const at::Tensor& w_hh, const at::Tensor& b_ih,
                               const at::Tensor& b_hh, c10::string_view cell) {
  const CellKind kind = parse_cell(cell);
  check_forward_inputs(x_in, h0_in, cond_in, w_ih, w_hh, b_ih, b_hh, kind);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor h0 = h0_in.contiguous();
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), D = h0.size(1);
  const int64_t GD = gate_count(kind) * D;

  // pre[t, b] = W_ih x_t + b_ih + b_hh + cond[b], all steps in one GEMM.
  at::Tensor pre = at::addmm(b_ih + b_hh, x.view({T * B, I}), w_ih.t()).view({T, B, GD});
  pre.add_(cond_in.unsqueeze(0));

  at::Tensor h_all = at::empty({T, B, D}, x.options());
  const at::Tensor w_hh_t = w_hh.t();
  at::Tensor h_prev = h0;
  for (int64_t t = 0; t < T; ++t) {
    at::Tensor pre_t = pre.select(0, t);
    pre_t.addmm_(h_prev, w_hh_t);
    at::Tensor h_t = h_all.select(0, t);
    Pointwise::tanh_forward(pre_t, h_t);
    h_prev = h_t;
  }
  return {h_all, at::empty({0}, x.options())};
}

// Backward over the whole sequence: per step (last to first) one fused
// elementwise pass and one GEMM for the recurrent gradient; the weight, bias,
// conditioning and input gradients as single reductions/GEMMs over all steps.
template <class Pointwise>
BackwardResult sequence_backward(const at::Tensor& grad_h_in, const at::Tensor& x_in,
                                 const at::Tensor& h0_in, const at::Tensor& h_all_in,
                                 const at::Tensor& /*workspace*/, const at::Tensor& w_ih,
                                 const at::Tensor& w_hh, c10::string_view cell) {
  const CellKind kind = parse_cell(cell);
  (void)kind;
  check_backward_inputs(grad_h_in, x_in, h0_in, h_all_in, w_ih, w_hh);
  const at::Tensor grad_h = grad_h_in.contiguous();
  const at::Tensor x = x_in.contiguous();
  const at::Tensor h0 = h0_in.contiguous();
  const at::Tensor h_all = h_all_in.contiguous();
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), D = h0.size(1);

  at::Tensor grad_pre = at::empty({T, B, D}, x.options());
  at::Tensor grad_rec = at::zeros({B, D}, x.options());
  for (int64_t t = T - 1; t >= 0; --t) {
    at::Tensor grad_pre_t = grad_pre.select(0, t);
    Pointwise::tanh_backward(grad_h.select(0, t), grad_rec, h_all.select(0, t), grad_pre_t);
    at::mm_out(grad_rec, grad_pre_t, w_hh);
  }

  const at::Tensor h_prev = at::cat({h0.unsqueeze(0), h_all.narrow(0, 0, T - 1)}, 0);
  const at::Tensor gp = grad_pre.view({T * B, D});
  at::Tensor grad_w_hh = at::mm(gp.t(), h_prev.view({T * B, D}));
  at::Tensor grad_w_ih = at::mm(gp.t(), x.view({T * B, I}));
  at::Tensor grad_cond = grad_pre.sum(0);
  at::Tensor grad_b = grad_cond.sum(0);
  at::Tensor grad_x = at::mm(gp, w_ih).view({T, B, I});
  return {grad_x, grad_rec, grad_cond, grad_w_ih, grad_w_hh, grad_b, grad_b.clone()};
}

}  // namespace ops
}  // namespace dynamo_ext
