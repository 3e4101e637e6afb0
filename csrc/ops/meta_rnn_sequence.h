// meta_rnn_sequence: the embedding-conditioned meta-RNN over a whole sequence.
//
// Schema (registered in registration.cpp):
//   meta_rnn_sequence(Tensor x, Tensor h0, Tensor cond, Tensor w_ih, Tensor w_hh,
//                     Tensor b_ih, Tensor b_hh, str cell) -> (Tensor h_all, Tensor workspace)
//   x [T, B, I] time-major inputs, h0 [B, D] initial meta state,
//   cond [B, G*D] per-row conditioning bias (U theta_n of the row's model),
//   w_ih [G*D, I], w_hh [G*D, D], b_ih [G*D], b_hh [G*D]; G = 1 (tanh) or 3 (GRU).
//   h_all [T, B, D] = z_1..z_T; workspace: what the backward needs beyond h_all:
//   [T, B, 0] (empty) for the tanh cell, [T, B, 4D] = (r, u, n, W_hn z_{t-1} + b_hn) for the GRU.
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

enum class CellKind { Tanh, Gru };

CellKind parse_cell(c10::string_view cell);
int64_t gate_count(CellKind kind);
int64_t workspace_width(CellKind kind, int64_t D);

void check_forward_inputs(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& cond,
                          const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
                          const at::Tensor& b_hh, CellKind kind);

void check_backward_inputs(const at::Tensor& grad_h, const at::Tensor& x, const at::Tensor& h0,
                           const at::Tensor& h_all, const at::Tensor& workspace, const at::Tensor& w_ih,
                           const at::Tensor& w_hh, CellKind kind);

void define_meta_rnn_sequence(torch::Library& m);

using ForwardResult = std::tuple<at::Tensor, at::Tensor>;
// grad_x, grad_h0, grad_cond, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh
using BackwardResult =
    std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

// Forward over the whole sequence: one GEMM for the input projection of all
// steps, then per step one recurrent GEMM and one fused elementwise pass.
template <class Pointwise>
ForwardResult sequence_forward(const at::Tensor& x_in, const at::Tensor& h0_in, const at::Tensor& cond,
                               const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
                               const at::Tensor& b_hh, c10::string_view cell) {
  const CellKind kind = parse_cell(cell);
  check_forward_inputs(x_in, h0_in, cond, w_ih, w_hh, b_ih, b_hh, kind);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor h0 = h0_in.contiguous();
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), D = h0.size(1);
  const int64_t GD = gate_count(kind) * D;
  const at::Tensor w_hh_t = w_hh.t();

  // Input-side pre-activations of all steps in one GEMM: W_ih x_t + b_ih (+ b_hh for tanh) + cond.
  const at::Tensor in_bias = kind == CellKind::Tanh ? b_ih + b_hh : b_ih;
  at::Tensor pre = at::addmm(in_bias, x.view({T * B, I}), w_ih.t()).view({T, B, GD});
  pre.add_(cond.unsqueeze(0));

  at::Tensor h_all = at::empty({T, B, D}, x.options());
  at::Tensor workspace = at::empty({T, B, workspace_width(kind, D)}, x.options());
  at::Tensor gh = kind == CellKind::Gru ? at::empty({B, GD}, x.options()) : at::Tensor();
  at::Tensor h_prev = h0;
  for (int64_t t = 0; t < T; ++t) {
    at::Tensor pre_t = pre.select(0, t);
    at::Tensor h_t = h_all.select(0, t);
    if (kind == CellKind::Tanh) {
      pre_t.addmm_(h_prev, w_hh_t);
      Pointwise::tanh_forward(pre_t, h_t);
    } else {
      at::addmm_out(gh, b_hh, h_prev, w_hh_t);
      at::Tensor ws_t = workspace.select(0, t);
      Pointwise::gru_forward(pre_t, gh, h_prev, h_t, ws_t);
    }
    h_prev = h_t;
  }
  return {h_all, workspace};
}

// Backward over the whole sequence: per step (last to first) one fused
// elementwise pass and one GEMM for the recurrent gradient; weight, bias,
// conditioning and input gradients as single GEMMs or reductions over all steps.
template <class Pointwise>
BackwardResult sequence_backward(const at::Tensor& grad_h_in, const at::Tensor& x_in, const at::Tensor& h0_in,
                                 const at::Tensor& h_all_in, const at::Tensor& workspace_in,
                                 const at::Tensor& w_ih, const at::Tensor& w_hh, c10::string_view cell) {
  const CellKind kind = parse_cell(cell);
  check_backward_inputs(grad_h_in, x_in, h0_in, h_all_in, workspace_in, w_ih, w_hh, kind);
  const at::Tensor grad_h = grad_h_in.contiguous();
  const at::Tensor x = x_in.contiguous();
  const at::Tensor h0 = h0_in.contiguous();
  const at::Tensor h_all = h_all_in.contiguous();
  const at::Tensor workspace = workspace_in.contiguous();
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), D = h0.size(1);
  const int64_t GD = gate_count(kind) * D;

  // grad_gi: dL/d(input-side pre-activations); grad_gh: dL/d(recurrent ones).
  // For the tanh cell both are dL/da and share one buffer.
  at::Tensor grad_gi = at::empty({T, B, GD}, x.options());
  at::Tensor grad_gh = kind == CellKind::Tanh ? grad_gi : at::empty({T, B, GD}, x.options());
  at::Tensor grad_rec = at::zeros({B, D}, x.options());
  at::Tensor direct = kind == CellKind::Gru ? at::empty({B, D}, x.options()) : at::Tensor();
  for (int64_t t = T - 1; t >= 0; --t) {
    at::Tensor gi_t = grad_gi.select(0, t);
    if (kind == CellKind::Tanh) {
      Pointwise::tanh_backward(grad_h.select(0, t), grad_rec, h_all.select(0, t), gi_t);
      at::mm_out(grad_rec, gi_t, w_hh);
    } else {
      const at::Tensor h_prev = t > 0 ? h_all.select(0, t - 1) : h0;
      at::Tensor gh_t = grad_gh.select(0, t);
      Pointwise::gru_backward(grad_h.select(0, t), grad_rec, workspace.select(0, t), h_prev, gi_t, gh_t, direct);
      at::addmm_out(grad_rec, direct, gh_t, w_hh);
    }
  }

  const at::Tensor h_prev_all = at::cat({h0.unsqueeze(0), h_all.narrow(0, 0, T - 1)}, 0);
  const at::Tensor gi = grad_gi.view({T * B, GD});
  const at::Tensor gh = grad_gh.view({T * B, GD});
  at::Tensor grad_w_hh = at::mm(gh.t(), h_prev_all.view({T * B, D}));
  at::Tensor grad_w_ih = at::mm(gi.t(), x.view({T * B, I}));
  at::Tensor grad_cond = grad_gi.sum(0);
  at::Tensor grad_b_ih = grad_cond.sum(0);
  at::Tensor grad_b_hh = kind == CellKind::Tanh ? grad_b_ih.clone() : gh.sum(0);
  at::Tensor grad_x = at::mm(gi, w_ih).view({T, B, I});
  return {grad_x, grad_rec, grad_cond, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh};
}

}  // namespace ops
}  // namespace dynamo_ext
