// Adam's per-element update, shared by the CPU and CUDA kernels of row_adam_ (csrc/ops/row_adam.h).
//
// torch.optim.Adam's update (Kingma & Ba 2015, Algorithm 1; PyTorch's fused implementation's
// order of operations), for one element with gradient g after `step` updates of its row:
//   m <- m + (1 - beta1) (g - m),   v <- beta2 v + (1 - beta2) g^2
//   p <- p - (lr / (1 - beta1^step)) m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
// The two bias corrections depend on the row only (RowCorrection), computed once per row in double.
#pragma once

#include <cmath>
#include <cstdint>

#include "cell_math.h"  // DYNAMO_HD

namespace dynamo_ext {
namespace adam {

struct RowCorrection {
  double step_size;        // lr / (1 - beta1^step)
  double correction2_sqrt; // sqrt(1 - beta2^step)
};

template <typename T>
DYNAMO_HD T square_root(T x) {
#if defined(__CUDA_ARCH__)
  return ::sqrt(x);
#else
  return std::sqrt(x);
#endif
}

DYNAMO_HD RowCorrection row_correction(double lr, double beta1, double beta2, int64_t step) {
  const double s = static_cast<double>(step);
#if defined(__CUDA_ARCH__)
  const double c1 = 1.0 - ::pow(beta1, s), c2 = 1.0 - ::pow(beta2, s);
#else
  const double c1 = 1.0 - std::pow(beta1, s), c2 = 1.0 - std::pow(beta2, s);
#endif
  return {lr / c1, square_root(c2)};
}

template <typename T>
DYNAMO_HD void update(T& p, T& m, T& v, T g, T beta1, T beta2, T eps, T step_size, T correction2_sqrt) {
  m = m + (T(1) - beta1) * (g - m);
  v = beta2 * v + (T(1) - beta2) * g * g;
  const T denom = square_root(v) / correction2_sqrt + eps;
  p = p - step_size * (m / denom);
}

}  // namespace adam
}  // namespace dynamo_ext
