// Schema and argument checks of newton_fixed_points (see the header).
#include "newton_fixed_points.h"

#include "meta_rnn_sequence.h"

namespace dynamo_ext {
namespace ops {

namespace {
void check_arg(const at::Tensor& t, const char* name, std::initializer_list<int64_t> shape, const at::Tensor& like) {
  TORCH_CHECK(t.defined(), "newton_fixed_points: argument '", name, "' is undefined");
  const std::vector<int64_t> want(shape);
  TORCH_CHECK(t.sizes().vec() == want, "newton_fixed_points: argument '", name, "' must have shape ",
              c10::IntArrayRef(want), ", got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), "newton_fixed_points: argument '", name,
              "' must have dtype ", like.scalar_type(), " (the dtype of z0), got ", t.scalar_type());
  TORCH_CHECK(t.device() == like.device(), "newton_fixed_points: argument '", name, "' must be on device ",
              like.device(), " (the device of z0), got ", t.device());
}
}  // namespace

void check_newton_inputs(const at::Tensor& z0, const at::Tensor& x, const at::Tensor& cond, const at::Tensor& w_ih,
                         const at::Tensor& w_hh, const at::Tensor& b_ih, const at::Tensor& b_hh,
                         c10::string_view cell, double tol, int64_t max_iter, double min_progress) {
  const CellKind kind = parse_fixed_point_cell(cell);
  TORCH_CHECK(z0.dim() == 2, "newton_fixed_points: argument 'z0' must be [K, D], got shape ", z0.sizes());
  TORCH_CHECK(z0.scalar_type() == at::kFloat || z0.scalar_type() == at::kDouble,
              "newton_fixed_points: argument 'z0' must be float32 or float64, got ", z0.scalar_type());
  TORCH_CHECK(x.dim() == 2, "newton_fixed_points: argument 'x' must be [K, I], got shape ", x.sizes());
  TORCH_CHECK(w_hh.dim() == 2, "newton_fixed_points: argument 'w_hh' must be [G*H, H], got shape ",
              w_hh.sizes());
  // H hidden units: the state is [h] (D = H), or [h; c] for the LSTM (D = 2H)
  const int64_t K = z0.size(0), D = z0.size(1), I = x.size(1), H = kind == CellKind::Lstm ? D / 2 : D;
  const int64_t GD = gate_count(kind) * H;
  TORCH_CHECK(state_size(kind, H) == D, "newton_fixed_points: argument 'z0' must be [K, 2H] ([h; c]) for the LSTM "
              "cell, got shape ", z0.sizes());
  check_arg(x, "x", {K, I}, z0);
  check_arg(cond, "cond", {K, GD}, z0);
  check_arg(w_ih, "w_ih", {GD, I}, z0);
  check_arg(w_hh, "w_hh", {GD, H}, z0);
  check_arg(b_ih, "b_ih", {GD}, z0);
  check_arg(b_hh, "b_hh", {GD}, z0);
  TORCH_CHECK(tol > 0, "newton_fixed_points: argument 'tol' must be > 0, got ", tol);
  TORCH_CHECK(max_iter >= 1, "newton_fixed_points: argument 'max_iter' must be >= 1, got ", max_iter);
  TORCH_CHECK(min_progress >= 0 && min_progress < 1,
              "newton_fixed_points: argument 'min_progress' must be in [0, 1), got ", min_progress);
}

void define_newton_fixed_points(torch::Library& m) {
  m.def(
      "newton_fixed_points(Tensor z0, Tensor x, Tensor cond, Tensor w_ih, Tensor w_hh, Tensor b_ih, Tensor b_hh, "
      "str cell, float tol, int max_iter, bool return_jacobian, float min_progress) "
      "-> (Tensor, Tensor, Tensor, Tensor, Tensor)");
}

}  // namespace ops
}  // namespace dynamo_ext
