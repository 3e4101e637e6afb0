// CPU backend of newton_fixed_points: candidates spread over at::parallel_for,
// each solved in per-thread scratch (its D x D system stays in cache).
// Cell math and Jacobian coefficients come from csrc/cell_math.h.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

#include "../../cell_math.h"
#include "vectorize.h"
#include "../meta_rnn_sequence.h"
#include "../newton_fixed_points.h"
#include "../newton_rule.h"
#include "../small_linalg.h"


namespace dynamo_ext {
namespace ops {
namespace {

template <typename T>
struct CellSystem {
  CellKind kind;
  int64_t D;      // state size
  int64_t H;      // hidden units: D, or D / 2 for the LSTM's [h; c]
  const T* w_hh;  // [G*H, H]
  const T* b_hh;  // [G*H]
};

// Per-candidate scratch, reused across the candidates of one thread.
template <typename T>
struct Scratch {
  std::vector<T> gh, coef, F, J, A, JtJ, dz, z_trial, F_trial, coef_trial, rhs, panel;
  std::vector<int64_t> piv;
  explicit Scratch(int64_t D, int64_t GD)
      : gh(GD), coef(4 * D), F(D), J(D * D), A(D * D), JtJ(D * D), dz(D), z_trial(D), F_trial(D),
        coef_trial(4 * D), rhs(D), panel(linalg::kPanel * D), piv(D) {}
};

// F = cell(z) - z; coef holds what the Jacobian needs (tanh: 1 - h^2; GRU: r, u, n, ghn;
// LSTM: i, f, g, o, tanh(c')). Returns ||F||_2^2.
template <typename T>
DYNAMO_INLINE T evaluate(const CellSystem<T>& sys, const T* gi, const T* z, T* gh, T* F, T* coef) {
  const int64_t D = sys.D, H = sys.H, GD = gate_count(sys.kind) * H;
  for (int64_t i = 0; i < GD; ++i) {  // gh = W_hh h + b_hh (h = z[0:H])
    const T* row = sys.w_hh + i * H;
    T s = 0;
    DYNAMO_SIMD_SUM(s)
    for (int64_t j = 0; j < H; ++j) s += row[j] * z[j];
    gh[i] = sys.b_hh[i] + s;
  }
  T sq = 0;
  // one loop per cell, so that each is vectorised for its cell
  if (sys.kind == CellKind::Tanh) {
    for (int64_t j = 0; j < D; ++j) {
      F[j] = cell::fixed_point_residual_unit(false, gi, gh, z, j, D, coef);
      sq += F[j] * F[j];
    }
  } else if (sys.kind == CellKind::Lstm) {
    for (int64_t j = 0; j < H; ++j) sq += cell::lstm_fixed_point_residual_unit(gi, gh, z, j, H, coef, F);
  } else {
    for (int64_t j = 0; j < D; ++j) {
      F[j] = cell::fixed_point_residual_unit(true, gi, gh, z, j, D, coef);
      sq += F[j] * F[j];
    }
  }
  return sq;
}

// J = dcell/dz at z of the LSTM (row-major D x D, D = 2H): rows j and H + j of unit j
// (csrc/cell_math.h, lstm_jacobian_coefficients).
template <typename T>
DYNAMO_INLINE void lstm_step_jacobian(const CellSystem<T>& sys, const T* z, const T* coef, T* J) {
  const int64_t D = sys.D, H = sys.H;
  for (int64_t j = 0; j < H; ++j) {
    T a_i, a_f, a_g, a_o, k;
    const T f = coef[H + j];
    cell::lstm_jacobian_coefficients(coef[j], f, coef[2 * H + j], coef[3 * H + j], coef[4 * H + j], z[H + j], a_i,
                                     a_f, a_g, a_o, k);
    const T* wi = sys.w_hh + j * H;
    const T* wf = sys.w_hh + (H + j) * H;
    const T* wg = sys.w_hh + (2 * H + j) * H;
    const T* wo = sys.w_hh + (3 * H + j) * H;
    T* rh = J + j * D;
    T* rc = J + (H + j) * D;
    for (int64_t a = 0; a < H; ++a) {
      const T dc = a_i * wi[a] + a_f * wf[a] + a_g * wg[a];
      rc[a] = dc;
      rh[a] = a_o * wo[a] + k * dc;
    }
    std::fill(rh + H, rh + D, T(0));
    std::fill(rc + H, rc + D, T(0));
    rh[H + j] = k * f;
    rc[H + j] = f;
  }
}

// J = dcell/dz at z (row-major D x D).
template <typename T>
DYNAMO_INLINE void step_jacobian(const CellSystem<T>& sys, const T* z, const T* coef, T* J) {
  const int64_t D = sys.D;
  if (sys.kind == CellKind::Lstm) return lstm_step_jacobian(sys, z, coef, J);
  for (int64_t j = 0; j < D; ++j) {
    T* row = J + j * D;
    if (sys.kind == CellKind::Tanh) {
      const T a = coef[j];
      const T* w = sys.w_hh + j * D;
      for (int64_t k = 0; k < D; ++k) row[k] = a * w[k];
    } else {
      T a_r, a_u, a_n, diag;
      cell::gru_jacobian_coefficients(coef[j], coef[D + j], coef[2 * D + j], coef[3 * D + j], z[j], a_r, a_u, a_n,
                                      diag);
      const T* wr = sys.w_hh + j * D;
      const T* wu = sys.w_hh + (D + j) * D;
      const T* wn = sys.w_hh + (2 * D + j) * D;
      for (int64_t k = 0; k < D; ++k) row[k] = a_r * wr[k] + a_u * wu[k] + a_n * wn[k];
      row[j] += diag;
    }
  }
}

template <typename T>
DYNAMO_INLINE T inf_norm(const T* v, int64_t n) {
  T m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(v[i]));
  return m;
}

// candidates a thread takes at a time from the shared counter
constexpr int64_t kChunk = 4;

// Solve one candidate; returns the iteration count, writes z in place and the final residual.
template <typename T>
DYNAMO_INLINE int64_t solve_candidate_impl(const CellSystem<T>& sys, const T* gi, T* z, T tol, int64_t max_iter,
                                          T min_progress, Scratch<T>& s, T* residual_inf) {
  const int64_t D = sys.D;
  const T rcond_min = T(100) * std::numeric_limits<T>::epsilon();
  T fsq = evaluate(sys, gi, z, s.gh.data(), s.F.data(), s.coef.data());
  T mu = -1;  // Levenberg-Marquardt damping, set on first use
  ProgressWindow<T> progress(min_progress);
  int64_t it = 0;
  for (; it < max_iter; ++it) {
    if (!(inf_norm(s.F.data(), D) > tol)) break;
    if (progress.stalled(it, fsq)) break;  // creeping towards a slow point
    // A <- dF/dz = dcell/dz - I, factorised in place
    step_jacobian(sys, z, s.coef.data(), s.A.data());
    for (int64_t j = 0; j < D; ++j) s.A[j * D + j] -= T(1);
    bool accepted = false;
    // Newton step where the system is well conditioned, halved up to kBacktracks times
    if (linalg::lu_factor(s.A.data(), D, s.piv.data(), s.panel.data()) > rcond_min) {
      for (int64_t j = 0; j < D; ++j) s.dz[j] = -s.F[j];
      linalg::lu_solve(s.A.data(), D, s.piv.data(), s.dz.data());
      T alpha = 1;
      for (int b = 0; b <= kBacktracks && !accepted; ++b, alpha *= T(0.5)) {
        for (int64_t j = 0; j < D; ++j) s.z_trial[j] = z[j] + alpha * s.dz[j];
        const T trial = evaluate(sys, gi, s.z_trial.data(), s.gh.data(), s.F_trial.data(), s.coef_trial.data());
        accepted = std::isfinite(trial) && trial < fsq;
        if (accepted) fsq = trial;
      }
    }
    if (!accepted) {
      // Levenberg-Marquardt: (J^T J + mu I) dz = -J^T F (lower triangle of J^T J)
      step_jacobian(sys, z, s.coef.data(), s.J.data());
      for (int64_t j = 0; j < D; ++j) s.J[j * D + j] -= T(1);
      linalg::normal_equations(s.J.data(), s.F.data(), D, s.JtJ.data(), s.rhs.data(), s.panel.data());
      if (mu < 0) {
        T dmax = 0;
        for (int64_t j = 0; j < D; ++j) dmax = std::max(dmax, s.JtJ[j * D + j]);
        mu = T(1e-3) * std::max(dmax, T(1e-12));
      }
      for (int tries = 0; tries < kMaxDampingTries && !accepted; ++tries) {
        std::copy(s.JtJ.begin(), s.JtJ.end(), s.A.begin());
        for (int64_t j = 0; j < D; ++j) s.A[j * D + j] += mu;
        if (linalg::cholesky_factor(s.A.data(), D, s.panel.data())) {
          std::copy(s.rhs.begin(), s.rhs.end(), s.dz.begin());
          linalg::cholesky_solve(s.A.data(), D, s.dz.data());
          for (int64_t j = 0; j < D; ++j) s.z_trial[j] = z[j] + s.dz[j];
          const T trial = evaluate(sys, gi, s.z_trial.data(), s.gh.data(), s.F_trial.data(), s.coef_trial.data());
          if (std::isfinite(trial) && trial < fsq) {
            accepted = true;
            fsq = trial;
            mu = std::max(mu / T(10), std::numeric_limits<T>::min());
            break;
          }
        }
        mu *= T(10);
      }
    }
    if (!accepted) break;  // stalled: a slow point or a local minimum of ||F||
    std::copy(s.z_trial.begin(), s.z_trial.end(), z);
    std::swap(s.F, s.F_trial);
    std::swap(s.coef, s.coef_trial);
  }
  *residual_inf = inf_norm(s.F.data(), D);
  return it;
}

// Non-template entry points, built for AVX-512, AVX2 and baseline x86-64 (chosen at load time).
DYNAMO_CLONES int64_t solve_candidate(const CellSystem<float>& sys, const float* gi, float* z, float tol,
                                      int64_t max_iter, float min_progress, Scratch<float>& s, float* residual_inf) {
  return solve_candidate_impl(sys, gi, z, tol, max_iter, min_progress, s, residual_inf);
}
DYNAMO_CLONES int64_t solve_candidate(const CellSystem<double>& sys, const double* gi, double* z, double tol,
                                      int64_t max_iter, double min_progress, Scratch<double>& s,
                                      double* residual_inf) {
  return solve_candidate_impl(sys, gi, z, tol, max_iter, min_progress, s, residual_inf);
}

NewtonResult newton_cpu(const at::Tensor& z0, const at::Tensor& x, const at::Tensor& cond, const at::Tensor& w_ih,
                        const at::Tensor& w_hh_in, const at::Tensor& b_ih, const at::Tensor& b_hh_in,
                        c10::string_view cell, double tol, int64_t max_iter, bool return_jacobian,
                        double min_progress) {
  check_newton_inputs(z0, x, cond, w_ih, w_hh_in, b_ih, b_hh_in, cell, tol, max_iter, min_progress);
  const CellKind kind = parse_fixed_point_cell(cell);
  const int64_t K = z0.size(0), D = z0.size(1), H = kind == CellKind::Lstm ? D / 2 : D;
  const int64_t GD = gate_count(kind) * H;
  // constant input side of every candidate: W_ih x + b_ih + cond
  const at::Tensor gi = at::addmm(b_ih, x, w_ih.t()).add_(cond).contiguous();
  const at::Tensor w_hh = w_hh_in.contiguous();
  const at::Tensor b_hh = b_hh_in.contiguous();
  at::Tensor z = z0.contiguous().clone();
  at::Tensor residual = at::empty({K}, z0.options());
  at::Tensor iterations = at::empty({K}, z0.options().dtype(at::kLong));
  at::Tensor jac = at::empty({K, return_jacobian ? D : 0, return_jacobian ? D : 0}, z0.options());
  AT_DISPATCH_FLOATING_TYPES(z0.scalar_type(), "newton_fixed_points_cpu", [&] {
    const CellSystem<scalar_t> sys{kind, D, H, w_hh.const_data_ptr<scalar_t>(), b_hh.const_data_ptr<scalar_t>()};
    const scalar_t* gi_p = gi.const_data_ptr<scalar_t>();
    scalar_t* z_p = z.mutable_data_ptr<scalar_t>();
    scalar_t* res_p = residual.mutable_data_ptr<scalar_t>();
    int64_t* it_p = iterations.mutable_data_ptr<int64_t>();
    scalar_t* jac_p = jac.mutable_data_ptr<scalar_t>();
    // Candidates differ in cost by 10x and more (a slow point runs all max_iter damped
    // iterations, a fixed point a handful of Newton steps), so each thread takes the next
    // kChunk candidates from a shared counter rather than a fixed share of K.
    std::atomic<int64_t> next{0};
    at::parallel_for(0, at::get_num_threads(), 1, [&](int64_t, int64_t) {
      Scratch<scalar_t> s(D, GD);
      for (int64_t k0 = next.fetch_add(kChunk); k0 < K; k0 = next.fetch_add(kChunk)) {
        for (int64_t k = k0; k < std::min(k0 + kChunk, K); ++k) {
          scalar_t* zk = z_p + k * D;
          it_p[k] = solve_candidate(sys, gi_p + k * GD, zk, static_cast<scalar_t>(tol), max_iter,
                                    static_cast<scalar_t>(min_progress), s, res_p + k);
          if (return_jacobian) {
            evaluate(sys, gi_p + k * GD, zk, s.gh.data(), s.F.data(), s.coef.data());
            step_jacobian(sys, zk, s.coef.data(), jac_p + k * D * D);
          }
        }
      }
    });
  });
  at::Tensor converged = residual.le(tol);
  return {z, residual, iterations, converged, jac};
}

}  // namespace

TORCH_LIBRARY_IMPL(dynamo_ext, CPU, m) {
  m.impl("newton_fixed_points", &newton_cpu);
}

}  // namespace ops
}  // namespace dynamo_ext
