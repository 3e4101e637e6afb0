// row_adam_: Adam on chosen rows of a parameter table, in place (the hidden maps of a fit,
// dynamo_ext.meta.packed; docs/performance.md, "Cost against the population size").
//
// Schema (registered in registration.cpp):
//   row_adam_(Tensor(a!) param, Tensor(b!) exp_avg, Tensor(c!) exp_avg_sq, Tensor grad, Tensor rows,
//             Tensor steps, float lr, float beta1, float beta2, float eps) -> ()
//   param, exp_avg, exp_avg_sq [P, C] (float32 or float64, contiguous, one device); grad [R, C] the
//   gradient of rows `rows` [R] (int64, distinct, in [0, P)); steps [R] (int64 >= 1) the step count of
//   each row including this update (its bias corrections). Every other row is left untouched.
//   The per-element update is csrc/adam_math.h's (torch.optim.Adam's, without weight decay).
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

namespace dynamo_ext {
namespace ops {

void check_row_adam_inputs(const at::Tensor& param, const at::Tensor& exp_avg, const at::Tensor& exp_avg_sq,
                           const at::Tensor& grad, const at::Tensor& rows, const at::Tensor& steps, double lr,
                           double beta1, double beta2, double eps);

void define_row_adam(torch::Library& m);

}  // namespace ops
}  // namespace dynamo_ext
