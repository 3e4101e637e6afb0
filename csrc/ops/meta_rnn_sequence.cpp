// Schema and shared argument checks of meta_rnn_sequence (see the header).
#include "meta_rnn_sequence.h"

namespace dynamo_ext {
namespace ops {

CellKind parse_cell(c10::string_view cell) {
  if (cell == "tanh") return CellKind::Tanh;
  if (cell == "gru") return CellKind::Gru;
  TORCH_CHECK_NOT_IMPLEMENTED(false, "meta_rnn_sequence: argument 'cell' must be 'tanh' or 'gru', got '",
                              std::string(cell), "'");
}

CellKind parse_fixed_point_cell(c10::string_view cell) {
  if (cell == "tanh") return CellKind::Tanh;
  if (cell == "gru") return CellKind::Gru;
  if (cell == "lstm") return CellKind::Lstm;
  TORCH_CHECK_NOT_IMPLEMENTED(false, "newton_fixed_points: argument 'cell' must be 'tanh', 'gru' or 'lstm', got '",
                              std::string(cell), "'");
}

int64_t gate_count(CellKind kind) {
  return kind == CellKind::Lstm ? 4 : kind == CellKind::Gru ? 3 : 1;
}

int64_t state_size(CellKind kind, int64_t hidden) {
  return kind == CellKind::Lstm ? 2 * hidden : hidden;
}

int64_t workspace_width(CellKind kind, int64_t D) {
  return kind == CellKind::Gru ? 4 * D : 0;
}

namespace {

void check_tensor(const at::Tensor& t, const char* name, int64_t dim, const at::Tensor& like) {
  TORCH_CHECK(t.defined(), "meta_rnn_sequence: argument '", name, "' is undefined");
  TORCH_CHECK(t.dim() == dim, "meta_rnn_sequence: argument '", name, "' must have ", dim,
              " dimensions, got shape ", t.sizes());
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), "meta_rnn_sequence: argument '", name,
              "' must have dtype ", like.scalar_type(), " (the dtype of x), got ", t.scalar_type());
  TORCH_CHECK(t.device() == like.device(), "meta_rnn_sequence: argument '", name,
              "' must be on device ", like.device(), " (the device of x), got ", t.device());
}

void check_size(const at::Tensor& t, const char* name, int64_t dim, int64_t expected) {
  TORCH_CHECK(t.size(dim) == expected, "meta_rnn_sequence: argument '", name, "' must have size ",
              expected, " in dimension ", dim, ", got shape ", t.sizes());
}

}  // namespace

void check_forward_inputs(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& cond,
                          const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
                          const at::Tensor& b_hh, CellKind kind) {
  TORCH_CHECK(x.dim() == 3, "meta_rnn_sequence: argument 'x' must be [T, B, I], got shape ", x.sizes());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "meta_rnn_sequence: argument 'x' must be float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(x.size(0) >= 1, "meta_rnn_sequence: argument 'x' must hold at least one time step, got shape ",
              x.sizes());
  check_tensor(h0, "h0", 2, x);
  check_tensor(cond, "cond", 2, x);
  check_tensor(w_ih, "w_ih", 2, x);
  check_tensor(w_hh, "w_hh", 2, x);
  check_tensor(b_ih, "b_ih", 1, x);
  check_tensor(b_hh, "b_hh", 1, x);
  // D is fixed by the recurrent weight: w_hh is [G*D, D]
  const int64_t B = x.size(1), I = x.size(2), D = w_hh.size(1), GD = gate_count(kind) * D;
  check_size(h0, "h0", 0, B);
  check_size(h0, "h0", 1, D);
  check_size(cond, "cond", 0, B);
  check_size(cond, "cond", 1, GD);
  check_size(w_ih, "w_ih", 0, GD);
  check_size(w_ih, "w_ih", 1, I);
  check_size(w_hh, "w_hh", 0, GD);
  check_size(w_hh, "w_hh", 1, D);
  check_size(b_ih, "b_ih", 0, GD);
  check_size(b_hh, "b_hh", 0, GD);
}

void check_backward_inputs(const at::Tensor& grad_h, const at::Tensor& x, const at::Tensor& h0,
                           const at::Tensor& h_all, const at::Tensor& workspace, const at::Tensor& w_ih,
                           const at::Tensor& w_hh, CellKind kind) {
  TORCH_CHECK(x.dim() == 3, "meta_rnn_sequence_backward: argument 'x' must be [T, B, I], got shape ",
              x.sizes());
  check_tensor(grad_h, "grad_h", 3, x);
  check_tensor(h0, "h0", 2, x);
  check_tensor(h_all, "h_all", 3, x);
  check_tensor(w_ih, "w_ih", 2, x);
  check_tensor(w_hh, "w_hh", 2, x);
  TORCH_CHECK(grad_h.sizes() == h_all.sizes(), "meta_rnn_sequence_backward: argument 'grad_h' must have shape ",
              h_all.sizes(), " (that of h_all), got ", grad_h.sizes());
  check_size(h_all, "h_all", 0, x.size(0));
  check_size(h_all, "h_all", 1, x.size(1));
  check_size(h_all, "h_all", 2, h0.size(1));
  const int64_t D = h0.size(1), GD = gate_count(kind) * D;
  check_size(w_hh, "w_hh", 0, GD);
  check_size(w_hh, "w_hh", 1, D);
  check_size(w_ih, "w_ih", 0, GD);
  check_size(w_ih, "w_ih", 1, x.size(2));
  if (kind == CellKind::Gru) {
    check_tensor(workspace, "workspace", 3, x);
    check_size(workspace, "workspace", 0, x.size(0));
    check_size(workspace, "workspace", 1, x.size(1));
    check_size(workspace, "workspace", 2, workspace_width(kind, D));
  }
}

void define_meta_rnn_sequence(torch::Library& m) {
  m.def(
      "meta_rnn_sequence(Tensor x, Tensor h0, Tensor cond, Tensor w_ih, Tensor w_hh, Tensor b_ih, "
      "Tensor b_hh, str cell, bool save_workspace=True) -> (Tensor, Tensor)");
  m.def(
      "meta_rnn_sequence_backward(Tensor grad_h, Tensor x, Tensor h0, Tensor h_all, Tensor workspace, "
      "Tensor w_ih, Tensor w_hh, str cell, bool need_grad_x=True) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, "
      "Tensor)");
}

}  // namespace ops
}  // namespace dynamo_ext
