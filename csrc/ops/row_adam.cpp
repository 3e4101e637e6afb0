// Schema and argument checks of row_adam_ (see the header).
#include "row_adam.h"

namespace dynamo_ext {
namespace ops {

namespace {
void check_like(const at::Tensor& t, const char* name, const at::Tensor& like, bool same_shape) {
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), "row_adam_: argument '", name, "' must have dtype ",
              like.scalar_type(), " (the dtype of param), got ", t.scalar_type());
  TORCH_CHECK(t.device() == like.device(), "row_adam_: argument '", name, "' must be on device ", like.device(),
              " (the device of param), got ", t.device());
  TORCH_CHECK(!same_shape || t.sizes() == like.sizes(), "row_adam_: argument '", name, "' must have shape ",
              like.sizes(), " (the shape of param), got ", t.sizes());
  TORCH_CHECK(t.is_contiguous(), "row_adam_: argument '", name, "' must be contiguous");
}
}  // namespace

void check_row_adam_inputs(const at::Tensor& param, const at::Tensor& exp_avg, const at::Tensor& exp_avg_sq,
                           const at::Tensor& grad, const at::Tensor& rows, const at::Tensor& steps, double lr,
                           double beta1, double beta2, double eps) {
  TORCH_CHECK(param.dim() == 2, "row_adam_: argument 'param' must be [P, C], got shape ", param.sizes());
  TORCH_CHECK(param.scalar_type() == at::kFloat || param.scalar_type() == at::kDouble,
              "row_adam_: argument 'param' must be float32 or float64, got ", param.scalar_type());
  TORCH_CHECK(param.is_contiguous(), "row_adam_: argument 'param' must be contiguous");
  check_like(exp_avg, "exp_avg", param, true);
  check_like(exp_avg_sq, "exp_avg_sq", param, true);
  TORCH_CHECK(rows.dim() == 1 && rows.scalar_type() == at::kLong, "row_adam_: argument 'rows' must be int64 [R], got ",
              rows.scalar_type(), " of shape ", rows.sizes());
  const int64_t R = rows.size(0);
  TORCH_CHECK(grad.dim() == 2 && grad.size(0) == R && grad.size(1) == param.size(1),
              "row_adam_: argument 'grad' must have shape [", R, ", ", param.size(1), "] (rows, param's columns), got ",
              grad.sizes());
  check_like(grad, "grad", param, false);
  TORCH_CHECK(steps.dim() == 1 && steps.size(0) == R && steps.scalar_type() == at::kLong,
              "row_adam_: argument 'steps' must be int64 [", R, "], got ", steps.scalar_type(), " of shape ",
              steps.sizes());
  TORCH_CHECK(rows.device() == param.device() && steps.device() == param.device(),
              "row_adam_: arguments 'rows' and 'steps' must be on device ", param.device(), ", got ", rows.device(),
              " and ", steps.device());
  TORCH_CHECK(lr >= 0, "row_adam_: argument 'lr' must be >= 0, got ", lr);
  TORCH_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "row_adam_: arguments 'beta1' and 'beta2' must be "
              "in [0, 1), got ", beta1, " and ", beta2);
  TORCH_CHECK(eps > 0, "row_adam_: argument 'eps' must be > 0, got ", eps);
}

void define_row_adam(torch::Library& m) {
  m.def(
      "row_adam_(Tensor(a!) param, Tensor(b!) exp_avg, Tensor(c!) exp_avg_sq, Tensor grad, Tensor rows, "
      "Tensor steps, float lr, float beta1, float beta2, float eps) -> ()");
}

}  // namespace ops
}  // namespace dynamo_ext
