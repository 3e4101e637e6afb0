// Schemas and argument checks of hidden_map_loss (see the header).
#include "hidden_map_loss.h"

namespace dynamo_ext {
namespace ops {

namespace {
void check_index(const at::Tensor& t, const char* name, int64_t B, const at::Tensor& z) {
  TORCH_CHECK(t.dim() == 1 && t.size(0) == B && t.scalar_type() == at::kLong, "hidden_map_loss: argument '", name,
              "' must be int64 [", B, "] (one per row of z), got ", t.scalar_type(), " of shape ", t.sizes());
  TORCH_CHECK(t.device() == z.device(), "hidden_map_loss: argument '", name, "' must be on device ", z.device(),
              " (the device of z), got ", t.device());
}

void check_like(const at::Tensor& t, const char* name, const at::Tensor& z) {
  TORCH_CHECK(t.scalar_type() == z.scalar_type(), "hidden_map_loss: argument '", name, "' must have dtype ",
              z.scalar_type(), " (the dtype of z), got ", t.scalar_type());
  TORCH_CHECK(t.device() == z.device(), "hidden_map_loss: argument '", name, "' must be on device ", z.device(),
              " (the device of z), got ", t.device());
  TORCH_CHECK(t.is_contiguous(), "hidden_map_loss: argument '", name, "' must be contiguous");
}

void check_z_table(const at::Tensor& z, const at::Tensor& table) {
  TORCH_CHECK(z.dim() == 3, "hidden_map_loss: argument 'z' must be [B, T, D], got shape ", z.sizes());
  TORCH_CHECK(z.scalar_type() == at::kFloat || z.scalar_type() == at::kDouble,
              "hidden_map_loss: argument 'z' must be float32 or float64, got ", z.scalar_type());
  TORCH_CHECK(z.is_contiguous(), "hidden_map_loss: argument 'z' must be contiguous");
  TORCH_CHECK(table.dim() == 2 && table.size(1) == z.size(2) + 1, "hidden_map_loss: argument 'table' must be [K, ",
              z.size(2) + 1, "] (D + 1 columns: A's row, then c), got shape ", table.sizes());
  check_like(table, "table", z);
}
}  // namespace

void check_hidden_map_loss_inputs(const at::Tensor& z, const at::Tensor& table, const at::Tensor& map_row,
                                  const at::Tensor& width, const at::Tensor& targets, const at::Tensor& target_start) {
  check_z_table(z, table);
  const int64_t B = z.size(0);
  check_index(map_row, "map_row", B, z);
  check_index(width, "width", B, z);
  check_index(target_start, "target_start", B, z);
  TORCH_CHECK(targets.dim() == 1, "hidden_map_loss: argument 'targets' must be 1-D [L], got shape ", targets.sizes());
  check_like(targets, "targets", z);
}

void check_hidden_map_loss_backward_inputs(const at::Tensor& grad, const at::Tensor& z, const at::Tensor& table,
                                           const at::Tensor& map_row, const at::Tensor& width,
                                           const at::Tensor& residual) {
  check_z_table(z, table);
  const int64_t B = z.size(0);
  check_index(map_row, "map_row", B, z);
  check_index(width, "width", B, z);
  TORCH_CHECK(grad.dim() == 0, "hidden_map_loss_backward: argument 'grad' must be 0-dim, got shape ", grad.sizes());
  TORCH_CHECK(residual.dim() == 1, "hidden_map_loss_backward: argument 'residual' must be 1-D, got shape ",
              residual.sizes());
  check_like(residual, "residual", z);
}

at::Tensor residual_offsets(const at::Tensor& width, int64_t T) { return (width.cumsum(0) - width) * T; }

void define_hidden_map_loss(torch::Library& m) {
  m.def(
      "hidden_map_loss(Tensor z, Tensor table, Tensor map_row, Tensor width, Tensor targets, Tensor target_start) "
      "-> (Tensor, Tensor)");
  m.def(
      "hidden_map_loss_backward(Tensor grad, Tensor z, Tensor table, Tensor map_row, Tensor width, "
      "Tensor residual, bool need_grad_z) -> (Tensor, Tensor)");
}

}  // namespace ops
}  // namespace dynamo_ext
