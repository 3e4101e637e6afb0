// Device code of newton_fixed_points on CUDA: the kernel and its block-wide helpers, apart
// from the host glue (newton_fixed_points_kernel.cu) so that the same code also compiles for
// the host under tests/cuda_emulation (each thread of a block a fiber, __syncthreads and warp
// shuffles as real barriers), where CI checks it against the CPU op.
//
// One thread block per candidate, the same rule as the CPU backend
// (csrc/ops/cpu/newton_fixed_points_kernel.cpp), the cell math of csrc/cell_math.h.
//
// Per iteration: a Newton step (LU), halved up to three times until ||F|| drops, else
// Levenberg-Marquardt steps with per-candidate damping (Cholesky).
//
// Per candidate the block keeps its vectors (state, residual, trial state, gate
// coefficients, ...) in shared memory, and its D x D system matrix A in shared memory
// where it fits (D <= 128 in float64 on an H100 or A100, D <= 181 in float32 on an
// H100), else in a per-candidate slice of a [K, D, D] global workspace. Jacobian entries
// are formed from the per-row coefficients and W_hh (read through the cache), never
// stored as a second matrix: the Levenberg-Marquardt system J^T J is kept in the strict
// upper triangle of A and a diagonal vector, and each damping try rebuilds the lower
// triangle from it and factorises there (Cholesky, in place), so one D x D array serves
// the LU of the Newton step and every damped try.
//
// Factorisations are unblocked and right-looking: every thread of the block updates its
// share of the trailing matrix after each pivot column. Control flow is uniform across
// the block (every thread computes the same scalars from the same shared values), so the
// barriers inside loops are reached by all threads.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>

#include <cfloat>
#include <cstddef>
#include <cstdint>

#include "../../cell_math.h"
#include "../meta_rnn_sequence.h"
#include "../newton_fixed_points.h"
#include "../newton_rule.h"
#include "shared_memory.cuh"

namespace dynamo_ext {
namespace ops {
namespace newton_device {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

// machine epsilon and smallest normal number (std::numeric_limits is host-only without
// --expt-relaxed-constexpr)
template <typename T>
struct Limits;
template <>
struct Limits<float> {
  static constexpr float kEps = FLT_EPSILON, kMin = FLT_MIN;
};
template <>
struct Limits<double> {
  static constexpr double kEps = DBL_EPSILON, kMin = DBL_MIN;
};

__device__ __forceinline__ int warp_id() { return threadIdx.x >> 5; }
__device__ __forceinline__ int lane_id() { return threadIdx.x & 31; }

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}

// Block-wide reductions; every thread returns the result. red: kWarps slots of shared memory.
template <typename T>
__device__ T block_sum(T v, T* red) {
  v = warp_sum(v);
  __syncthreads();  // red may still be read by the previous reduction
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  T s = 0;
  for (int w = 0; w < kWarps; ++w) s += red[w];
  return s;
}

// max of non-negative values (NaN is ignored, as on the CPU)
template <typename T>
__device__ T block_max(T v, T* red) {
  for (int o = 16; o > 0; o >>= 1) {
    const T other = __shfl_down_sync(0xffffffffu, v, o);
    v = other > v ? other : v;
  }
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  T m = 0;
  for (int w = 0; w < kWarps; ++w) m = red[w] > m ? red[w] : m;
  return m;
}

__device__ int block_min_int(int v, int* red) {
  for (int o = 16; o > 0; o >>= 1) v = min(v, __shfl_down_sync(0xffffffffu, v, o));
  __syncthreads();
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  int m = red[0];
  for (int w = 1; w < kWarps; ++w) m = min(m, red[w]);
  return m;
}

template <typename T>
struct System {
  int G;  // gate blocks: 1 tanh, 3 GRU, 4 LSTM
  int D;  // state size
  int H;  // hidden units: D, or D / 2 for the LSTM's [h; c]
  const T* __restrict__ w_hh;  // [G*H, H]
  const T* __restrict__ b_hh;  // [G*H]
};

// Shared-memory vectors of one candidate (and A when it lives there).
template <typename T>
struct Work {
  T *A, *z, *F, *F_trial, *z_trial, *dz, *rhs, *jtj_diag, *coef, *coef_trial, *jc, *gh, *red;
  int *piv, *ired;
};

template <typename T>
__host__ __device__ inline size_t vector_elements(int D, int G) {
  // z, F, F_trial, z_trial, dz, rhs, jtj_diag; coef, coef_trial (4D each); jc (5D); gh (at most G*D); red
  return size_t(7) * D + size_t(13) * D + size_t(G) * D + 32;
}

template <typename T>
inline size_t shared_bytes(int D, int G, bool matrix_in_shared) {
  const size_t elems = vector_elements<T>(D, G) + (matrix_in_shared ? size_t(D) * D : 0);
  return elems * sizeof(T) + (size_t(D) + 32) * sizeof(int);
}

// Where a launch keeps each candidate's D x D system: shared memory when the block's vectors and
// the matrix fit in smem_limit bytes, else a [K, D, D] global workspace; bytes of dynamic shared
// memory per block. bytes > smem_limit: D too large for this device.
struct LaunchPlan {
  bool matrix_in_shared;
  size_t bytes;
};

template <typename T>
inline LaunchPlan launch_plan(int D, int G, size_t smem_limit) {
  const bool in_shared = shared_bytes<T>(D, G, true) <= smem_limit;
  return {in_shared, shared_bytes<T>(D, G, in_shared)};
}

// F = cell(z) - z, coef as on the CPU (tanh: 1 - h^2; GRU: r, u, n, ghn; LSTM: i, f, g, o,
// tanh(c')); returns ||F||_2^2.
template <typename T>
__device__ T evaluate(const System<T>& sys, const T* __restrict__ gi, const T* z, T* gh, T* F, T* coef, T* red) {
  const int D = sys.D, H = sys.H, GD = sys.G * H;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // z may have just been written
  for (int row = warp; row < GD; row += kWarps) {  // one warp per row of W_hh (gh = W_hh h + b_hh)
    const T* w = sys.w_hh + size_t(row) * H;
    T s = 0;
    for (int j = lane; j < H; j += 32) s += w[j] * z[j];
    s = warp_sum(s);
    if (lane == 0) gh[row] = sys.b_hh[row] + s;
  }
  __syncthreads();
  T sq = 0;
  if (sys.G == 4) {
    for (int j = threadIdx.x; j < H; j += kThreads) sq += cell::lstm_fixed_point_residual_unit(gi, gh, z, j, H, coef, F);
  } else {
    for (int j = threadIdx.x; j < D; j += kThreads) {
      F[j] = cell::fixed_point_residual_unit(sys.G == 3, gi, gh, z, j, D, coef);
      sq += F[j] * F[j];
    }
  }
  return block_sum(sq, red);
}

// Per-row Jacobian coefficients at z (cell::jacobian_row): row i of dcell/dz is
// sum_g jc[g*D+i] W_hh[g*H + i mod H][:H] plus jc[4D+i] at column extra_col(i).
template <typename T>
__device__ void jacobian_coefficients(const System<T>& sys, const T* z, const T* coef, T* jc) {
  const int D = sys.D;
  __syncthreads();  // coef may have just been written
  for (int i = threadIdx.x; i < D; i += kThreads) {
    T row[4] = {T(0), T(0), T(0), T(0)};
    T extra;
    cell::jacobian_row(sys.G, coef, z, i, sys.H, row, extra);
    for (int g = 0; g < 4; ++g) jc[g * D + i] = row[g];
    jc[4 * D + i] = extra;
  }
  __syncthreads();
}

// column of row i's extra entry (the GRU's u, the LSTM's dc'/dc term)
template <typename T>
__device__ __forceinline__ int extra_column(const System<T>& sys, int i) {
  return sys.G == 4 && i < sys.H ? sys.H + i : i;
}

// dF_i/dz_a
template <typename T>
__device__ __forceinline__ T jacobian_entry(const System<T>& sys, const T* jc, int i, int a) {
  const int D = sys.D, H = sys.H;
  const int u = i < H ? i : i - H;
  const T* w = sys.w_hh;
  T v = 0;
  if (a < H)
    for (int g = 0; g < sys.G; ++g) v += jc[g * D + i] * w[size_t(g * H + u) * H + a];
  if (a == extra_column(sys, i)) v += jc[4 * D + i];
  if (i == a) v -= T(1);
  return v;
}

template <typename T>
__device__ T block_inf_norm(const T* v, int n, T* red) {
  T m = 0;
  for (int j = threadIdx.x; j < n; j += kThreads) {
    const T a = fabs(v[j]);
    m = a > m ? a : m;
  }
  return block_max(m, red);
}

// LU with partial pivoting of A (n x n, row-major) in place; returns min/max |pivot| (0 if singular).
template <typename T>
__device__ T lu_factor(T* A, int n, int* piv, T* red, int* ired) {
  T max_pivot = 0, min_pivot = INFINITY;
  for (int k = 0; k < n; ++k) {
    T v = 0;
    for (int i = k + threadIdx.x; i < n; i += kThreads) {
      const T a = fabs(A[size_t(i) * n + k]);
      v = a > v ? a : v;
    }
    const T best = block_max(v, red);
    if (!(best > T(0))) return T(0);
    int idx = n;
    for (int i = k + threadIdx.x; i < n; i += kThreads)
      if (fabs(A[size_t(i) * n + k]) == best) idx = min(idx, i);
    const int p = block_min_int(idx, ired);  // the first row of largest |value|, as on the CPU
    if (threadIdx.x == 0) piv[k] = p;
    max_pivot = best > max_pivot ? best : max_pivot;
    min_pivot = best < min_pivot ? best : min_pivot;
    if (p != k) {
      for (int j = threadIdx.x; j < n; j += kThreads) {
        const T tmp = A[size_t(k) * n + j];
        A[size_t(k) * n + j] = A[size_t(p) * n + j];
        A[size_t(p) * n + j] = tmp;
      }
    }
    __syncthreads();
    const T inv = T(1) / A[size_t(k) * n + k];
    for (int i = k + 1 + threadIdx.x; i < n; i += kThreads) A[size_t(i) * n + k] *= inv;
    __syncthreads();
    for (int i = k + 1 + warp_id(); i < n; i += kWarps) {  // a warp per row, lanes along it
      const T l = A[size_t(i) * n + k];
      for (int j = k + 1 + lane_id(); j < n; j += 32) A[size_t(i) * n + j] -= l * A[size_t(k) * n + j];
    }
    __syncthreads();
  }
  return max_pivot > T(0) ? min_pivot / max_pivot : T(0);
}

template <typename T>
__device__ void lu_solve(const T* A, int n, const int* piv, T* b) {
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int k = 0; k < n; ++k) {
      if (piv[k] != k) {
        const T tmp = b[k];
        b[k] = b[piv[k]];
        b[piv[k]] = tmp;
      }
    }
  }
  __syncthreads();
  for (int k = 0; k < n; ++k) {  // L y = b, L unit lower
    const T bk = b[k];
    for (int i = k + 1 + threadIdx.x; i < n; i += kThreads) b[i] -= A[size_t(i) * n + k] * bk;
    __syncthreads();
  }
  for (int k = n - 1; k >= 0; --k) {  // U x = y
    const T xk = b[k] / A[size_t(k) * n + k];
    __syncthreads();
    if (threadIdx.x == 0) b[k] = xk;
    for (int i = threadIdx.x; i < k; i += kThreads) b[i] -= A[size_t(i) * n + k] * xk;
    __syncthreads();
  }
}

// Cholesky of the lower triangle of A in place (the strict upper triangle is not touched).
template <typename T>
__device__ bool cholesky_factor(T* A, int n) {
  for (int k = 0; k < n; ++k) {
    __syncthreads();
    const T d = A[size_t(k) * n + k];
    if (!(d > T(0))) return false;
    const T s = sqrt(d);
    __syncthreads();
    if (threadIdx.x == 0) A[size_t(k) * n + k] = s;
    const T inv = T(1) / s;
    for (int i = k + 1 + threadIdx.x; i < n; i += kThreads) A[size_t(i) * n + k] *= inv;
    __syncthreads();
    for (int i = k + 1 + warp_id(); i < n; i += kWarps) {  // the lower triangle, a warp per row
      const T l = A[size_t(i) * n + k];
      for (int j = k + 1 + lane_id(); j <= i; j += 32) A[size_t(i) * n + j] -= l * A[size_t(j) * n + k];
    }
  }
  __syncthreads();
  return true;
}

// L L^T x = b with the lower triangle of A; b overwritten with x.
template <typename T>
__device__ void cholesky_solve(const T* A, int n, T* b) {
  for (int k = 0; k < n; ++k) {
    __syncthreads();
    const T xk = b[k] / A[size_t(k) * n + k];
    __syncthreads();
    if (threadIdx.x == 0) b[k] = xk;
    for (int i = k + 1 + threadIdx.x; i < n; i += kThreads) b[i] -= A[size_t(i) * n + k] * xk;
  }
  for (int k = n - 1; k >= 0; --k) {
    __syncthreads();
    const T xk = b[k] / A[size_t(k) * n + k];
    __syncthreads();
    if (threadIdx.x == 0) b[k] = xk;
    for (int i = threadIdx.x; i < k; i += kThreads) b[i] -= A[size_t(k) * n + i] * xk;
  }
  __syncthreads();
}

template <typename T>
__device__ void copy_vec(T* dst, const T* src, int n) {
  __syncthreads();
  for (int j = threadIdx.x; j < n; j += kThreads) dst[j] = src[j];
  __syncthreads();
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    newton_kernel(System<T> sys, const T* __restrict__ gi_all, const T* __restrict__ z0, T* __restrict__ z_out,
                  T* __restrict__ residual, int64_t* __restrict__ iterations, T* __restrict__ jac,
                  T* __restrict__ global_A, bool matrix_in_shared, T tol, int64_t max_iter,
                  T min_progress) {
  DYNAMO_EXTERN_SHARED(smem_raw);
  const int D = sys.D, GD = sys.G * sys.H;
  const int64_t cand = blockIdx.x;
  T* base = reinterpret_cast<T*>(smem_raw);
  Work<T> w;
  size_t off = 0;
  auto take = [&](size_t n) {
    T* p = base + off;
    off += n;
    return p;
  };
  w.A = matrix_in_shared ? take(size_t(D) * D) : global_A + cand * size_t(D) * D;
  w.z = take(D);
  w.F = take(D);
  w.F_trial = take(D);
  w.z_trial = take(D);
  w.dz = take(D);
  w.rhs = take(D);
  w.jtj_diag = take(D);
  w.coef = take(4 * D);
  w.coef_trial = take(4 * D);
  w.jc = take(5 * D);
  w.gh = take(GD);
  w.red = take(32);
  w.piv = reinterpret_cast<int*>(base + off);
  w.ired = w.piv + D;

  const T* gi = gi_all + cand * GD;
  for (int j = threadIdx.x; j < D; j += kThreads) w.z[j] = z0[cand * D + j];
  T* F = w.F;
  T* F_trial = w.F_trial;
  T* coef = w.coef;
  T* coef_trial = w.coef_trial;
  T* A = w.A;
  const T rcond_min = T(100) * Limits<T>::kEps;
  T fsq = evaluate(sys, gi, w.z, w.gh, F, coef, w.red);
  T mu = -1;
  ProgressWindow<T> progress(min_progress);  // every thread holds the same ring
  int64_t it = 0;
  for (; it < max_iter; ++it) {
    if (!(block_inf_norm(F, D, w.red) > tol)) break;
    if (progress.stalled(it, fsq)) break;  // creeping towards a slow point
    jacobian_coefficients(sys, w.z, coef, w.jc);
    for (int i = warp_id(); i < D; i += kWarps)
      for (int a = lane_id(); a < D; a += 32) A[size_t(i) * D + a] = jacobian_entry(sys, w.jc, i, a);
    __syncthreads();
    bool accepted = false;
    if (lu_factor(A, D, w.piv, w.red, w.ired) > rcond_min) {
      for (int j = threadIdx.x; j < D; j += kThreads) w.dz[j] = -F[j];
      lu_solve(A, D, w.piv, w.dz);
      T alpha = 1;
      for (int b = 0; b <= kBacktracks && !accepted; ++b, alpha *= T(0.5)) {
        for (int j = threadIdx.x; j < D; j += kThreads) w.z_trial[j] = w.z[j] + alpha * w.dz[j];
        const T trial = evaluate(sys, gi, w.z_trial, w.gh, F_trial, coef_trial, w.red);
        accepted = isfinite(trial) && trial < fsq;
        if (accepted) fsq = trial;
      }
    }
    if (!accepted) {
      // Levenberg-Marquardt: J^T J in the strict upper triangle of A and jtj_diag, -J^T F in rhs
      __syncthreads();
      for (int a = threadIdx.x; a < D; a += kThreads) {
        T d = 0, r = 0;
        for (int i = 0; i < D; ++i) {
          const T jia = jacobian_entry(sys, w.jc, i, a);
          d += jia * jia;
          r += jia * F[i];
        }
        w.jtj_diag[a] = d;
        w.rhs[a] = -r;
      }
      for (int a = warp_id(); a < D; a += kWarps) {
        for (int b = a + 1 + lane_id(); b < D; b += 32) {
          T s = 0;
          for (int i = 0; i < D; ++i) s += jacobian_entry(sys, w.jc, i, a) * jacobian_entry(sys, w.jc, i, b);
          A[size_t(a) * D + b] = s;
        }
      }
      __syncthreads();
      if (mu < 0) {
        T dmax = 0;
        for (int a = threadIdx.x; a < D; a += kThreads) dmax = w.jtj_diag[a] > dmax ? w.jtj_diag[a] : dmax;
        dmax = block_max(dmax, w.red);
        mu = T(1e-3) * (dmax > T(1e-12) ? dmax : T(1e-12));
      }
      for (int tries = 0; tries < kMaxDampingTries && !accepted; ++tries) {
        __syncthreads();
        for (int a = warp_id(); a < D; a += kWarps) {
          for (int b = lane_id(); b < a; b += 32) A[size_t(a) * D + b] = A[size_t(b) * D + a];
          if (lane_id() == 0) A[size_t(a) * D + a] = w.jtj_diag[a] + mu;
        }
        __syncthreads();
        if (cholesky_factor(A, D)) {
          copy_vec(w.dz, w.rhs, D);
          cholesky_solve(A, D, w.dz);
          for (int j = threadIdx.x; j < D; j += kThreads) w.z_trial[j] = w.z[j] + w.dz[j];
          const T trial = evaluate(sys, gi, w.z_trial, w.gh, F_trial, coef_trial, w.red);
          if (isfinite(trial) && trial < fsq) {
            accepted = true;
            fsq = trial;
            mu = mu / T(10) > Limits<T>::kMin ? mu / T(10) : Limits<T>::kMin;
            break;
          }
        }
        mu *= T(10);
      }
    }
    if (!accepted) break;  // stalled: a slow point or a local minimum of ||F||
    copy_vec(w.z, w.z_trial, D);
    T* t = F;
    F = F_trial;
    F_trial = t;
    t = coef;
    coef = coef_trial;
    coef_trial = t;
  }
  const T res = block_inf_norm(F, D, w.red);
  for (int j = threadIdx.x; j < D; j += kThreads) z_out[cand * D + j] = w.z[j];
  if (threadIdx.x == 0) {
    residual[cand] = res;
    iterations[cand] = it;
  }
  if (jac != nullptr) {  // dcell/dz at the final state
    evaluate(sys, gi, w.z, w.gh, F, coef, w.red);
    jacobian_coefficients(sys, w.z, coef, w.jc);
    T* out = jac + cand * size_t(D) * D;
    for (int i = warp_id(); i < D; i += kWarps)
      for (int a = lane_id(); a < D; a += 32)
        out[size_t(i) * D + a] = jacobian_entry(sys, w.jc, i, a) + (i == a ? T(1) : T(0));
  }
}

// The host side of the op, shared by the CUDA backend (Launch = CudaLaunch, launch.cuh) and the
// emulation (tests/cuda_emulation): checks, the input side gi = W_ih x + b_ih + cond, the
// outputs, where the system matrices live (smem_limit: shared memory a block may use, bytes),
// and one launch of a block per candidate.
template <class Launch>
NewtonResult newton_driver(const at::Tensor& z0, const at::Tensor& x, const at::Tensor& cond, const at::Tensor& w_ih,
                           const at::Tensor& w_hh_in, const at::Tensor& b_ih, const at::Tensor& b_hh_in,
                           c10::string_view cell, double tol, int64_t max_iter, bool return_jacobian,
                           double min_progress, size_t smem_limit) {
  check_newton_inputs(z0, x, cond, w_ih, w_hh_in, b_ih, b_hh_in, cell, tol, max_iter, min_progress);
  const CellKind kind = parse_fixed_point_cell(cell);
  const int64_t K = z0.size(0), D = z0.size(1), H = kind == CellKind::Lstm ? D / 2 : D;
  const int G = static_cast<int>(gate_count(kind));
  TORCH_CHECK(D <= 8192, "newton_fixed_points: argument 'z0' must have D <= 8192 on CUDA, got D = ", D);
  const at::Tensor gi = at::addmm(b_ih, x, w_ih.t()).add_(cond).contiguous();
  const at::Tensor w_hh = w_hh_in.contiguous();
  const at::Tensor b_hh = b_hh_in.contiguous();
  const at::Tensor z_in = z0.contiguous();
  at::Tensor z = at::empty_like(z_in);
  at::Tensor residual = at::empty({K}, z0.options());
  at::Tensor iterations = at::empty({K}, z0.options().dtype(at::kLong));
  at::Tensor jac = at::empty({K, return_jacobian ? D : 0, return_jacobian ? D : 0}, z0.options());
  if (K == 0) return {z, residual, iterations, residual.le(tol), jac};
  AT_DISPATCH_FLOATING_TYPES(z0.scalar_type(), "newton_fixed_points_cuda", [&] {
    const LaunchPlan plan = launch_plan<scalar_t>(static_cast<int>(D), G, smem_limit);
    const bool in_shared = plan.matrix_in_shared;
    const size_t bytes = plan.bytes;
    TORCH_CHECK(bytes <= smem_limit, "newton_fixed_points: D = ", D, " needs ", bytes,
                " bytes of shared memory per block for its vectors; this device allows ", smem_limit);
    // the system matrices of all candidates, where they do not fit in shared memory
    at::Tensor workspace = in_shared ? at::Tensor() : at::empty({K, D, D}, z0.options());
    const System<scalar_t> sys{G, static_cast<int>(D), static_cast<int>(H), w_hh.const_data_ptr<scalar_t>(),
                               b_hh.const_data_ptr<scalar_t>()};
    Launch::run(newton_kernel<scalar_t>, static_cast<unsigned int>(K), kThreads, bytes,
        sys, gi.const_data_ptr<scalar_t>(), z_in.const_data_ptr<scalar_t>(), z.mutable_data_ptr<scalar_t>(),
        residual.mutable_data_ptr<scalar_t>(), iterations.mutable_data_ptr<int64_t>(),
        return_jacobian ? jac.mutable_data_ptr<scalar_t>() : nullptr,
        in_shared ? nullptr : workspace.mutable_data_ptr<scalar_t>(), in_shared, static_cast<scalar_t>(tol),
        max_iter, static_cast<scalar_t>(min_progress));
  });
  return {z, residual, iterations, residual.le(tol), jac};
}

}  // namespace newton_device
}  // namespace ops
}  // namespace dynamo_ext
