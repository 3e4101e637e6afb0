// meta_rnn_sequence: the embedding-conditioned meta-RNN over a whole sequence.
//
// Schema (registered in registration.cpp):
//   meta_rnn_sequence(Tensor x, Tensor h0, Tensor cond, Tensor w_ih, Tensor w_hh,
//                     Tensor b_ih, Tensor b_hh, str cell, bool save_workspace=True)
//                     -> (Tensor h_all, Tensor workspace)
//   x [T, B, I] time-major inputs, h0 [B, D] initial meta state,
//   cond [B, G*D] per-row conditioning bias (U theta_n of the row's model),
//   w_ih [G*D, I], w_hh [G*D, D], b_ih [G*D], b_hh [G*D]; G = 1 (tanh) or 3 (GRU).
//   h_all [T, B, D] = z_1..z_T; workspace: what the backward needs beyond h_all:
//   [T, B, 4D] = (r, u, n, W_hn z_{t-1} + b_hn) for the GRU, [T, B, 0] (empty) for the
//   tanh cell or when save_workspace is false (inference: no backward will follow).
//
// The device-generic driver below does the GEMMs through ATen (MKL/OpenBLAS on
// CPU, cuBLAS on CUDA) and hands the per-step elementwise pass to a backend
// `Pointwise` policy (cpu/ or cuda/), which applies csrc/cell_math.h.
// Pointwise policy interface (all tensors contiguous, [B, .] blocks of one step):
//   tanh_forward(pre, row_bias, h):                         h = tanh(pre + row_bias)
//   tanh_backward(grad_out, grad_rec, h, grad_pre, cond_acc)
//   gru_forward(gi, row_bias, gh, b_hh, h_prev, h, ws)      ws = (r, u, n, W_hn z_prev + b_hn)
//   gru_backward(grad_out, grad_rec (in/out), ws, h_prev, grad_gi, grad_gh, cond_acc, hn_acc)
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

// Forward over the whole sequence. Per step: the input-side GEMM (W_ih x_t), the
// recurrent GEMM (W_hh z_{t-1}) and one fused elementwise pass that adds the
// row's bias (cond + b_ih, + b_hh) and applies the cell. Every per-step buffer
// is [B, G*D] and stays in cache; only z_t (and the GRU's gates) go to memory,
// which on a bandwidth-bound CPU matters more than GEMM size.
template <class Pointwise>
ForwardResult sequence_forward(const at::Tensor& x_in, const at::Tensor& h0_in, const at::Tensor& cond_in,
                               const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
                               const at::Tensor& b_hh, c10::string_view cell, bool save_workspace) {
  const CellKind kind = parse_cell(cell);
  check_forward_inputs(x_in, h0_in, cond_in, w_ih, w_hh, b_ih, b_hh, kind);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor h0 = h0_in.contiguous();
  const int64_t T = x.size(0), B = x.size(1), D = h0.size(1);
  const int64_t GD = gate_count(kind) * D;
  const at::Tensor w_ih_t = w_ih.t();
  const at::Tensor w_hh_t = w_hh.t();
  const bool tanh_cell = kind == CellKind::Tanh;
  // Biases never go through the GEMMs (ATen would first copy them, broadcast, into the output).
  const at::Tensor row_bias = (tanh_cell ? cond_in + (b_ih + b_hh) : cond_in + b_ih).contiguous();
  const at::Tensor b_hh_c = b_hh.contiguous();

  at::Tensor h_all = at::empty({T, B, D}, x.options());
  at::Tensor workspace = at::empty({T, B, save_workspace ? workspace_width(kind, D) : 0}, x.options());
  // without a saved workspace the GRU's gates go to one reused, cache-resident step buffer
  at::Tensor scratch = save_workspace ? at::Tensor() : at::empty({B, workspace_width(kind, D)}, x.options());
  at::Tensor gi = at::empty({B, GD}, x.options());
  at::Tensor gh = tanh_cell ? at::Tensor() : at::empty({B, GD}, x.options());
  at::Tensor h_prev = h0;
  for (int64_t t = 0; t < T; ++t) {
    at::mm_out(gi, x.select(0, t), w_ih_t);
    at::Tensor h_t = h_all.select(0, t);
    if (tanh_cell) {
      gi.addmm_(h_prev, w_hh_t);
      Pointwise::tanh_forward(gi, row_bias, h_t);
    } else {
      at::mm_out(gh, h_prev, w_hh_t);
      at::Tensor ws_t = save_workspace ? workspace.select(0, t) : scratch;
      Pointwise::gru_forward(gi, row_bias, gh, b_hh_c, h_prev, h_t, ws_t);
    }
    h_prev = h_t;
  }
  return {h_all, workspace};
}

// Backward over the whole sequence, last step first. Per step: one fused
// elementwise pass (which also accumulates the conditioning and bias
// gradients), the GEMM for the recurrent gradient, and the weight- and
// input-gradient GEMMs on the step's gate gradients while they are in cache.
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
  const bool tanh_cell = kind == CellKind::Tanh;

  at::Tensor grad_x = at::empty({T, B, I}, x.options());
  at::Tensor grad_w_ih = at::zeros({GD, I}, x.options());
  at::Tensor grad_w_hh = at::zeros({GD, D}, x.options());
  at::Tensor grad_cond = at::zeros({B, GD}, x.options());  // sum over steps of dL/d(input-side pre-activation)
  at::Tensor grad_rec = at::zeros({B, D}, x.options());    // dL/dz_t flowing back through W_hh
  at::Tensor gi_t = at::empty({B, GD}, x.options());       // dL/d(input-side pre-activation) of this step
  // dL/d(W_hh z_{t-1} + b_hh) of this step: the same as gi_t for the tanh cell
  at::Tensor gh_t = tanh_cell ? gi_t : at::empty({B, GD}, x.options());
  at::Tensor grad_hn_sum = tanh_cell ? at::Tensor() : at::zeros({B, D}, x.options());
  for (int64_t t = T - 1; t >= 0; --t) {
    const at::Tensor h_prev = t > 0 ? h_all.select(0, t - 1) : h0;
    if (tanh_cell) {
      Pointwise::tanh_backward(grad_h.select(0, t), grad_rec, h_all.select(0, t), gi_t, grad_cond);
      at::mm_out(grad_rec, gi_t, w_hh);
    } else {
      // reads dL/dz_t from grad_rec and leaves there its direct part dL/dz_t * u ...
      Pointwise::gru_backward(grad_h.select(0, t), grad_rec, workspace.select(0, t), h_prev, gi_t, gh_t, grad_cond,
                              grad_hn_sum);
      // ... to which the GEMM adds W_hh^T dL/d(gh): grad_rec is now dL/dz_{t-1}
      grad_rec.addmm_(gh_t, w_hh);
    }
    grad_w_hh.addmm_(gh_t.t(), h_prev);
    const at::Tensor x_t = x.select(0, t);
    grad_w_ih.addmm_(gi_t.t(), x_t);
    at::Tensor grad_x_t = grad_x.select(0, t);
    at::mm_out(grad_x_t, gi_t, w_ih);
  }
  at::Tensor grad_b_ih = grad_cond.sum(0);
  at::Tensor grad_b_hh =
      tanh_cell ? grad_b_ih.clone() : at::cat({grad_b_ih.narrow(0, 0, 2 * D), grad_hn_sum.sum(0)}, 0);
  return {grad_x, grad_rec, grad_cond, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh};
}

}  // namespace ops
}  // namespace dynamo_ext
