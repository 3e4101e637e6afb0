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
//   meta_rnn_sequence_backward(Tensor grad_h, Tensor x, Tensor h0, Tensor h_all, Tensor workspace,
//                              Tensor w_ih, Tensor w_hh, str cell, bool need_grad_x=True)
//     -> (grad_x, grad_h0, grad_cond, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh);
//   grad_x is [0] (not computed) when need_grad_x is false.
//
// The device-generic driver below does the GEMMs through ATen (MKL/OpenBLAS on
// CPU, cuBLAS on CUDA) and hands the per-step elementwise pass to a backend
// policy (cpu/ or cuda/), which applies csrc/cell_math.h.
// Backend policy interface (the pointwise tensors are contiguous [n, .] row blocks of one step):
//   empty(sizes, options):                                 a buffer for a whole-sequence tensor
//   row_blocks(B):                                         how many row blocks to run side by side
//   for_each_block(count, f):                              f(i) for every block i (in parallel or not)
//   tanh_forward(pre, row_bias, h):                         h = tanh(pre + row_bias)
//   tanh_backward(grad_out, grad_rec, h, grad_pre, cond_acc)
//   gru_forward(gi, row_bias, gh, b_hh, h_prev, h, ws)      ws = (r, u, n, W_hn z_prev + b_hn)
//   gru_backward(grad_out, grad_rec (in/out), ws, h_prev, grad_gi, grad_gh, cond_acc, hn_acc)
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <string>
#include <tuple>

namespace dynamo_ext {
namespace ops {

// Lstm: newton_fixed_points only (the base models' cell; the meta-model's cells are tanh and GRU)
enum class CellKind { Tanh, Gru, Lstm };

// meta_rnn_sequence's cells: "tanh" or "gru"
CellKind parse_cell(c10::string_view cell);
// newton_fixed_points' cells: "tanh", "gru" or "lstm"
CellKind parse_fixed_point_cell(c10::string_view cell);
// gate blocks G of the weights: 1, 3, 4
int64_t gate_count(CellKind kind);
// state size D of H hidden units: H, or 2H for the LSTM's [h; c]
int64_t state_size(CellKind kind, int64_t hidden);
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

// Rows (sequences) are independent through the whole recurrence; only the
// weight gradients sum over them. So the driver splits the batch into row
// blocks and runs the entire time loop of each block on its own
// (`Backend::row_blocks`, `Backend::for_each_block`): on the CPU one block per
// thread, with sequential GEMMs inside, so that T steps cost no fork/join and
// no barrier; on CUDA one block, whose GEMMs and kernels use the whole device.
struct RowBlocks {
  int64_t count, rows;
  int64_t begin(int64_t i) const { return i * rows; }
  int64_t size(int64_t i, int64_t B) const { return std::min(rows, B - begin(i)); }
};

template <class Backend>
RowBlocks split_rows(int64_t B) {
  const int64_t count = std::max<int64_t>(1, std::min(Backend::row_blocks(B), B));
  const int64_t rows = std::max<int64_t>(1, (B + count - 1) / count);
  return {std::max<int64_t>(1, (B + rows - 1) / rows), rows};
}

// Forward of rows [b0, b0 + n) over all steps. Per step: the input-side GEMM
// (W_ih x_t), the recurrent GEMM (W_hh z_{t-1}) and one fused elementwise pass
// that adds the row's bias (cond + b_ih, + b_hh) and applies the cell. The
// per-step buffers are [n, G*D] and stay in cache; only z_t (and the GRU's
// gates) go to memory.
template <class Backend>
void forward_rows(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& row_bias, const at::Tensor& w_ih_t,
                  const at::Tensor& w_hh_t, const at::Tensor& b_hh, CellKind kind, bool save_workspace, int64_t b0,
                  int64_t n, at::Tensor& h_all, at::Tensor& workspace) {
  const int64_t T = x.size(0), GD = w_hh_t.size(1), D = h0.size(1);
  const bool tanh_cell = kind == CellKind::Tanh;
  const at::Tensor bias = row_bias.narrow(0, b0, n);
  // without a saved workspace the GRU's gates go to one reused, cache-resident step buffer
  at::Tensor scratch = save_workspace ? at::Tensor() : at::empty({n, workspace_width(kind, D)}, x.options());
  at::Tensor gi = at::empty({n, GD}, x.options());
  at::Tensor gh = tanh_cell ? at::Tensor() : at::empty({n, GD}, x.options());
  at::Tensor h_prev = h0.narrow(0, b0, n);
  for (int64_t t = 0; t < T; ++t) {
    at::mm_out(gi, x.select(0, t).narrow(0, b0, n), w_ih_t);
    at::Tensor h_t = h_all.select(0, t).narrow(0, b0, n);
    if (tanh_cell) {
      gi.addmm_(h_prev, w_hh_t);
      Backend::tanh_forward(gi, bias, h_t);
    } else {
      at::mm_out(gh, h_prev, w_hh_t);
      at::Tensor ws_t = save_workspace ? workspace.select(0, t).narrow(0, b0, n) : scratch;
      Backend::gru_forward(gi, bias, gh, b_hh, h_prev, h_t, ws_t);
    }
    h_prev = h_t;
  }
}

template <class Backend>
ForwardResult sequence_forward(const at::Tensor& x_in, const at::Tensor& h0_in, const at::Tensor& cond_in,
                               const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
                               const at::Tensor& b_hh, c10::string_view cell, bool save_workspace) {
  const CellKind kind = parse_cell(cell);
  check_forward_inputs(x_in, h0_in, cond_in, w_ih, w_hh, b_ih, b_hh, kind);
  const at::Tensor x = x_in.contiguous();
  const at::Tensor h0 = h0_in.contiguous();
  const int64_t T = x.size(0), B = x.size(1), D = h0.size(1);
  // plain aliases: the GEMMs below run under no autograd, on any thread
  const at::Tensor w_ih_t = w_ih.detach().t();
  const at::Tensor w_hh_t = w_hh.detach().t();
  const bool tanh_cell = kind == CellKind::Tanh;
  // Biases never go through the GEMMs (ATen would first copy them, broadcast, into the output).
  const at::Tensor row_bias = (tanh_cell ? cond_in + (b_ih + b_hh) : cond_in + b_ih).detach().contiguous();
  const at::Tensor b_hh_c = b_hh.detach().contiguous();

  at::Tensor h_all = Backend::empty({T, B, D}, x.options());
  at::Tensor workspace = Backend::empty({T, B, save_workspace ? workspace_width(kind, D) : 0}, x.options());
  const RowBlocks blocks = split_rows<Backend>(B);
  Backend::for_each_block(blocks.count, [&](int64_t i) {
    forward_rows<Backend>(x, h0, row_bias, w_ih_t, w_hh_t, b_hh_c, kind, save_workspace, blocks.begin(i),
                          blocks.size(i, B), h_all, workspace);
  });
  return {h_all, workspace};
}

// What one row block of the backward accumulates: its rows of grad_h0 (= the
// final grad_rec), grad_cond and the GRU's summed dL/d(W_hn z + b_hn), and its
// own partial weight gradients, summed over blocks at the end.
struct BackwardBlock {
  at::Tensor grad_rec, grad_cond, grad_hn_sum, grad_w_ih, grad_w_hh;
};

// Backward of one row block, last step first. Per step: one fused elementwise
// pass (which also accumulates the conditioning and bias gradients), the GEMM
// for the recurrent gradient, and the weight- and input-gradient GEMMs on the
// step's gate gradients while they are in cache.
template <class Backend>
void backward_rows(const at::Tensor& grad_h, const at::Tensor& x, const at::Tensor& h0, const at::Tensor& h_all,
                   const at::Tensor& workspace, const at::Tensor& w_ih, const at::Tensor& w_hh, CellKind kind,
                   bool need_grad_x, int64_t b0, int64_t n, at::Tensor& grad_x, BackwardBlock& out) {
  const int64_t T = x.size(0), GD = w_hh.size(0);
  const bool tanh_cell = kind == CellKind::Tanh;
  auto rows = [&](const at::Tensor& all, int64_t t) { return all.select(0, t).narrow(0, b0, n); };
  at::Tensor gi_t = at::empty({n, GD}, x.options());  // dL/d(input-side pre-activation) of this step
  // dL/d(W_hh z_{t-1} + b_hh) of this step: the same as gi_t for the tanh cell
  at::Tensor gh_t = tanh_cell ? gi_t : at::empty({n, GD}, x.options());
  for (int64_t t = T - 1; t >= 0; --t) {
    const at::Tensor h_prev = t > 0 ? rows(h_all, t - 1) : h0.narrow(0, b0, n);
    if (tanh_cell) {
      Backend::tanh_backward(rows(grad_h, t), out.grad_rec, rows(h_all, t), gi_t, out.grad_cond);
      at::mm_out(out.grad_rec, gi_t, w_hh);
    } else {
      // reads dL/dz_t from grad_rec and leaves there its direct part dL/dz_t * u ...
      Backend::gru_backward(rows(grad_h, t), out.grad_rec, rows(workspace, t), h_prev, gi_t, gh_t, out.grad_cond,
                            out.grad_hn_sum);
      // ... to which the GEMM adds W_hh^T dL/d(gh): grad_rec is now dL/dz_{t-1}
      out.grad_rec.addmm_(gh_t, w_hh);
    }
    out.grad_w_hh.addmm_(gh_t.t(), h_prev);
    out.grad_w_ih.addmm_(gi_t.t(), rows(x, t));
    if (need_grad_x) {
      at::Tensor grad_x_t = rows(grad_x, t);
      at::mm_out(grad_x_t, gi_t, w_ih);
    }
  }
}

template <class Backend>
BackwardResult sequence_backward(const at::Tensor& grad_h_in, const at::Tensor& x_in, const at::Tensor& h0_in,
                                 const at::Tensor& h_all_in, const at::Tensor& workspace_in,
                                 const at::Tensor& w_ih_in, const at::Tensor& w_hh_in, c10::string_view cell,
                                 bool need_grad_x) {
  const CellKind kind = parse_cell(cell);
  check_backward_inputs(grad_h_in, x_in, h0_in, h_all_in, workspace_in, w_ih_in, w_hh_in, kind);
  const at::Tensor grad_h = grad_h_in.contiguous();
  const at::Tensor x = x_in.contiguous();
  const at::Tensor h0 = h0_in.contiguous();
  const at::Tensor h_all = h_all_in.contiguous();
  const at::Tensor workspace = workspace_in.contiguous();
  const at::Tensor w_ih = w_ih_in.detach();
  const at::Tensor w_hh = w_hh_in.detach();
  const int64_t T = x.size(0), B = x.size(1), I = x.size(2), D = h0.size(1);
  const int64_t GD = gate_count(kind) * D;
  const bool tanh_cell = kind == CellKind::Tanh;

  const RowBlocks blocks = split_rows<Backend>(B);
  // without need_grad_x (x needs no gradient, as in a fit) grad_x is empty: [0]
  at::Tensor grad_x = need_grad_x ? Backend::empty({T, B, I}, x.options()) : at::empty({0}, x.options());
  at::Tensor grad_rec = at::zeros({B, D}, x.options());    // dL/dz_t flowing back through W_hh
  at::Tensor grad_cond = at::zeros({B, GD}, x.options());  // sum over steps of dL/d(input-side pre-activation)
  at::Tensor grad_hn_sum = tanh_cell ? at::Tensor() : at::zeros({B, D}, x.options());
  at::Tensor grad_w_ih = at::zeros({blocks.count, GD, I}, x.options());
  at::Tensor grad_w_hh = at::zeros({blocks.count, GD, D}, x.options());
  Backend::for_each_block(blocks.count, [&](int64_t i) {
    const int64_t b0 = blocks.begin(i), n = blocks.size(i, B);
    BackwardBlock out{grad_rec.narrow(0, b0, n), grad_cond.narrow(0, b0, n),
                      tanh_cell ? at::Tensor() : grad_hn_sum.narrow(0, b0, n), grad_w_ih.select(0, i),
                      grad_w_hh.select(0, i)};
    backward_rows<Backend>(grad_h, x, h0, h_all, workspace, w_ih, w_hh, kind, need_grad_x, b0, n, grad_x, out);
  });
  at::Tensor grad_b_ih = grad_cond.sum(0);
  at::Tensor grad_b_hh =
      tanh_cell ? grad_b_ih.clone() : at::cat({grad_b_ih.narrow(0, 0, 2 * D), grad_hn_sum.sum(0)}, 0);
  return {grad_x, grad_rec, grad_cond, grad_w_ih.sum(0), grad_w_hh.sum(0), grad_b_ih, grad_b_hh};
}

}  // namespace ops
}  // namespace dynamo_ext
