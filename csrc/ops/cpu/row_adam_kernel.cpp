// CPU backend of row_adam_: rows shared among threads (at::parallel_for), each row's columns in one
// loop over csrc/adam_math.h's update.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>

#include "../../adam_math.h"
#include "../row_adam.h"

namespace dynamo_ext {
namespace ops {
namespace {

void row_adam_cpu(at::Tensor& param, at::Tensor& exp_avg, at::Tensor& exp_avg_sq, const at::Tensor& grad,
                  const at::Tensor& rows, const at::Tensor& steps, double lr, double beta1, double beta2, double eps) {
  check_row_adam_inputs(param, exp_avg, exp_avg_sq, grad, rows, steps, lr, beta1, beta2, eps);
  const int64_t R = rows.size(0), P = param.size(0), C = param.size(1);
  if (R == 0 || C == 0) return;
  const at::Tensor grad_c = grad.contiguous(), rows_c = rows.contiguous(), steps_c = steps.contiguous();
  const int64_t* row = rows_c.data_ptr<int64_t>();
  const int64_t* step = steps_c.data_ptr<int64_t>();
  for (int64_t i = 0; i < R; ++i) {
    TORCH_CHECK(row[i] >= 0 && row[i] < P, "row_adam_: argument 'rows' must lie in [0, ", P, "), got ", row[i],
                " at position ", i);
    TORCH_CHECK(step[i] >= 1, "row_adam_: argument 'steps' must be >= 1, got ", step[i], " at position ", i);
  }
  AT_DISPATCH_FLOATING_TYPES(param.scalar_type(), "row_adam_cpu", [&] {
    scalar_t* p = param.data_ptr<scalar_t>();
    scalar_t* m = exp_avg.data_ptr<scalar_t>();
    scalar_t* v = exp_avg_sq.data_ptr<scalar_t>();
    const scalar_t* g = grad_c.data_ptr<scalar_t>();
    const auto b1 = static_cast<scalar_t>(beta1), b2 = static_cast<scalar_t>(beta2), e = static_cast<scalar_t>(eps);
    const int64_t grain = std::max<int64_t>(1, 16384 / C);  // rows per task: about 16k elements
    at::parallel_for(0, R, grain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const adam::RowCorrection k = adam::row_correction(lr, beta1, beta2, step[i]);
        const auto step_size = static_cast<scalar_t>(k.step_size);
        const auto c2 = static_cast<scalar_t>(k.correction2_sqrt);
        const int64_t at = row[i] * C;
        const scalar_t* gi = g + i * C;
        for (int64_t j = 0; j < C; ++j) adam::update(p[at + j], m[at + j], v[at + j], gi[j], b1, b2, e, step_size, c2);
      }
    });
  });
}

}  // namespace

TORCH_LIBRARY_IMPL(dynamo_ext, CPU, m) {
  m.impl("row_adam_", &row_adam_cpu);
}

}  // namespace ops
}  // namespace dynamo_ext
