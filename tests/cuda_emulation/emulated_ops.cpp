// The CUDA backends' device code (csrc/ops/cuda/*_device.cuh) and host drivers, compiled for
// the host over the emulation of emulate_cuda.h, on CPU tensors: what the CUDA kernels
// compute, to compare with the CPU op (tests/test_cuda_emulation.py).
#include <torch/extension.h>

#include "emulate_cuda.h"

#include "ops/cuda/hidden_map_loss_device.cuh"
#include "ops/cuda/meta_rnn_sequence_device.cuh"
#include "ops/cuda/newton_fixed_points_device.cuh"
#include "ops/cuda/row_adam_device.cuh"

namespace {

using namespace dynamo_ext::ops;

// block barriers passed by the launches since the last reset (the tests check that the
// emulation ran the kernels' barriers, not a shortcut)
int64_t g_barriers = 0;

struct EmulatedLaunch {
  template <class... Params, class... Args>
  static void run(void (*kernel)(Params...), unsigned int blocks, int threads, size_t shared_bytes, Args... args) {
    g_barriers += dynamo_emu::launch(kernel, dynamo_emu::dim3(blocks), dynamo_emu::dim3(threads), shared_bytes,
                                     args...);
  }
};

using Backend = meta_rnn_device::PointwiseBackend<EmulatedLaunch>;

std::vector<at::Tensor> meta_rnn_sequence(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& cond,
                                          const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
                                          const at::Tensor& b_hh, const std::string& cell, bool save_workspace) {
  auto [h, ws] = sequence_forward<Backend>(x, h0, cond, w_ih, w_hh, b_ih, b_hh, cell, save_workspace);
  return {h, ws};
}

std::vector<at::Tensor> meta_rnn_sequence_backward(const at::Tensor& grad_h, const at::Tensor& x,
                                                   const at::Tensor& h0, const at::Tensor& h_all,
                                                   const at::Tensor& workspace, const at::Tensor& w_ih,
                                                   const at::Tensor& w_hh, const std::string& cell,
                                                   bool need_grad_x) {
  auto [a, b, c, d, e, f, g] =
      sequence_backward<Backend>(grad_h, x, h0, h_all, workspace, w_ih, w_hh, cell, need_grad_x);
  return {a, b, c, d, e, f, g};
}

std::vector<at::Tensor> newton_fixed_points(const at::Tensor& z0, const at::Tensor& x, const at::Tensor& cond,
                                            const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
                                            const at::Tensor& b_hh, const std::string& cell, double tol,
                                            int64_t max_iter, bool return_jacobian, double min_progress,
                                            int64_t smem_limit) {
  auto [z, res, it, conv, jac] = newton_device::newton_driver<EmulatedLaunch>(
      z0, x, cond, w_ih, w_hh, b_ih, b_hh, cell, tol, max_iter, return_jacobian, min_progress,
      static_cast<size_t>(smem_limit));
  return {z, res, it, conv, jac};
}

void row_adam(at::Tensor param, at::Tensor exp_avg, at::Tensor exp_avg_sq, const at::Tensor& grad,
              const at::Tensor& rows, const at::Tensor& steps, double lr, double beta1, double beta2, double eps) {
  row_adam_device::row_adam_driver<EmulatedLaunch>(param, exp_avg, exp_avg_sq, grad, rows, steps, lr, beta1, beta2,
                                                   eps);
}

std::vector<at::Tensor> hidden_map_loss(const at::Tensor& z, const at::Tensor& table, const at::Tensor& map_row,
                                        const at::Tensor& width, const at::Tensor& targets,
                                        const at::Tensor& target_start) {
  auto [loss, residual] =
      hidden_map_device::forward_driver<EmulatedLaunch>(z, table, map_row, width, targets, target_start);
  return {loss, residual};
}

std::vector<at::Tensor> hidden_map_loss_backward(const at::Tensor& grad, const at::Tensor& z, const at::Tensor& table,
                                                 const at::Tensor& map_row, const at::Tensor& width,
                                                 const at::Tensor& residual, bool need_grad_z) {
  auto [grad_z, grad_table] =
      hidden_map_device::backward_driver<EmulatedLaunch>(grad, z, table, map_row, width, residual, need_grad_z);
  return {grad_z, grad_table};
}

// dynamic shared memory of one newton block (bytes), with or without its D x D matrix
int64_t shared_bytes(int64_t D, int64_t G, bool matrix_in_shared, bool float64) {
  return static_cast<int64_t>(float64 ? newton_device::shared_bytes<double>(D, G, matrix_in_shared)
                                      : newton_device::shared_bytes<float>(D, G, matrix_in_shared));
}

int64_t barriers() {
  const int64_t n = g_barriers;
  g_barriers = 0;
  return n;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("meta_rnn_sequence", &meta_rnn_sequence);
  m.def("meta_rnn_sequence_backward", &meta_rnn_sequence_backward);
  m.def("newton_fixed_points", &newton_fixed_points);
  m.def("row_adam_", &row_adam);
  m.def("hidden_map_loss", &hidden_map_loss);
  m.def("hidden_map_loss_backward", &hidden_map_loss_backward);
  m.def("shared_bytes", &shared_bytes);
  m.def("barriers", &barriers, "block barriers passed since the last call");
}
