// newton_fixed_points: batched fixed-point solves of one embedding-conditioned cell.
//
// Schema (registered in registration.cpp):
//   newton_fixed_points(Tensor z0, Tensor x, Tensor cond, Tensor w_ih, Tensor w_hh, Tensor b_ih,
//                       Tensor b_hh, str cell, float tol, int max_iter, bool return_jacobian,
//                       float min_progress)
//     -> (Tensor z, Tensor residual, Tensor iterations, Tensor converged, Tensor jacobian)
//   z0 [K, D] initial states, x [K, I] constant inputs, cond [K, G*H] conditioning biases,
//   w_ih [G*H, I], w_hh [G*H, H], b_ih, b_hh [G*H]; cell "tanh" (G = 1, D = H), "gru"
//   (G = 3, D = H) or "lstm" (G = 4, gate order i, f, g, o, state [h; c], D = 2H). For each candidate k it solves F(z) = cell(z, x_k) - z = 0:
//   a Newton step (LU with partial pivoting) on (J - I) dz = -F where the system is well
//   conditioned and the step, or its half, quarter or eighth, lowers ||F||, else
//   Levenberg-Marquardt steps
//   ((J-I)^T (J-I) + mu I) dz = -(J-I)^T F (Cholesky) with mu adapted per candidate.
//   A candidate stops early (a slow point) when no step lowers ||F||, or when ||F||_2 fell by
//   less than the fraction min_progress over its last kProgressWindow iterations (newton_rule.h).
//   Returns z [K, D], residual [K] = ||F(z)||_inf, iterations [K] (int64), converged [K]
//   (bool, residual <= tol), and jacobian [K, D, D] = dcell/dz at z (or [K, 0, 0]).
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <tuple>

namespace dynamo_ext {
namespace ops {

using NewtonResult = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

void check_newton_inputs(const at::Tensor& z0, const at::Tensor& x, const at::Tensor& cond, const at::Tensor& w_ih,
                         const at::Tensor& w_hh, const at::Tensor& b_ih, const at::Tensor& b_hh,
                         c10::string_view cell, double tol, int64_t max_iter, double min_progress);

void define_newton_fixed_points(torch::Library& m);

}  // namespace ops
}  // namespace dynamo_ext
