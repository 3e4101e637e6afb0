// Cell math shared by the CPU and CUDA kernels of dynamo_ext.
//
// Every function here is a branch-free __host__ __device__ inline function of
// one hidden unit, templated on the scalar type, so that the CPU loops
// (csrc/ops/cpu, auto-vectorised) and the CUDA pointwise kernels
// (csrc/ops/cuda) compute the same formula. Framework glue (tensors, dispatch,
// GEMMs) lives in csrc/ops; only per-unit arithmetic lives here (haste's
// separation of cell math and glue).
//
// Tanh cell (docs/method.md, "The meta-model"; arXiv:2302.14078):
//   a_t = W_x x_t + b_ih + U theta + W_h z_{t-1} + b_hh,   z_t = tanh(a_t)
// GRU cell (PyTorch gate convention; theta enters every gate's input side):
//   gi = W_x x_t + b_ih + U theta   (blocks r, u, n)
//   gh = W_h z_{t-1} + b_hh         (blocks r, u, n)
//   r = sigmoid(gi_r + gh_r), u = sigmoid(gi_u + gh_u)
//   n = tanh(gi_n + r * gh_n),  z_t = (1 - u) * n + u * z_{t-1}
// LSTM cell (PyTorch gate order i, f, g, o; state [h; c]; fixed points only, the
// base models' cell):
//   p = W_x x_t + b_ih + U theta + W_h h_{t-1} + b_hh   (blocks i, f, g, o)
//   i = sigmoid(p_i), f = sigmoid(p_f), g = tanh(p_g), o = sigmoid(p_o)
//   c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t)
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define DYNAMO_HD __host__ __device__ __forceinline__
#else
#define DYNAMO_HD inline __attribute__((always_inline))
#endif
// Host loops over these functions vectorise only when floating-point compares
// are not treated as trapping: the build passes -fno-trapping-math.

namespace dynamo_ext {
namespace cell {

// ---------------------------------------------------------------------------
// exp on the host: written branch-free so that compilers vectorise the loops
// that call it (the C library's exp is an opaque call and is not).
// exp(x) = 2^k * exp(r), k = round(x / ln 2), |r| <= ln 2 / 2, exp(r) by a
// Taylor polynomial (degree 13 for double, 7 for float: below 1 ulp of the
// polynomial's range), 2^k assembled in the exponent bits. Inputs are clamped
// to the finite range (the cells only need exp of bounded arguments).
// On the device the CUDA math library's exp is used.
// ---------------------------------------------------------------------------
template <typename T>
struct ExpTraits;

template <>
struct ExpTraits<double> {
  using Bits = uint64_t;
  static constexpr double kMax = 708.0;
  static constexpr double kShifter = 6755399441055744.0;  // 1.5 * 2^52: rounds to an integer in the low bits
  static constexpr int kMantissa = 52;
  static constexpr Bits kBias = 1023;
  static constexpr double kLn2Hi = 6.93147180369123816490e-01;
  static constexpr double kLn2Lo = 1.90821492927058770002e-10;
  static constexpr int kDegree = 13;
};

template <>
struct ExpTraits<float> {
  using Bits = uint32_t;
  static constexpr float kMax = 87.0f;
  static constexpr float kShifter = 12582912.0f;  // 1.5 * 2^23
  static constexpr int kMantissa = 23;
  static constexpr Bits kBias = 127;
  static constexpr float kLn2Hi = 0.693145751953125f;
  static constexpr float kLn2Lo = 1.428606765330187045e-06f;
  static constexpr int kDegree = 7;
};

// Taylor polynomial of exp in nested form, fully unrolled at compile time:
// e^r = 1 + r (1 + r/2 (1 + r/3 (... (1 + r/N))))
template <typename T, int J, int N>
struct ExpPoly {
  static DYNAMO_HD T eval(T r) { return T(1) + r * (T(1) / T(J)) * ExpPoly<T, J + 1, N>::eval(r); }
};
template <typename T, int N>
struct ExpPoly<T, N, N> {
  static DYNAMO_HD T eval(T r) { return T(1) + r * (T(1) / T(N)); }
};

template <typename T>
DYNAMO_HD T host_exp(T x) {
  using E = ExpTraits<T>;
  using Bits = typename E::Bits;
  x = x < E::kMax ? x : T(E::kMax);
  x = x > -E::kMax ? x : T(-E::kMax);
  const T kd_shifted = x * T(1.4426950408889634) + E::kShifter;
  Bits ki;
  std::memcpy(&ki, &kd_shifted, sizeof(T));
  const T kd = kd_shifted - E::kShifter;
  const T r = (x - kd * E::kLn2Hi) - kd * E::kLn2Lo;
  const T p = ExpPoly<T, 1, E::kDegree>::eval(r);
  const Bits scale_bits = (ki + E::kBias) << E::kMantissa;
  T scale;
  std::memcpy(&scale, &scale_bits, sizeof(T));
  return p * scale;
}

template <typename T>
DYNAMO_HD T exp_(T x) {
#if defined(__CUDA_ARCH__)
  return ::exp(x);
#else
  return host_exp(x);
#endif
}

template <typename T>
DYNAMO_HD T sigmoid_(T x) {
  return T(1) / (T(1) + exp_(-x));
}

template <typename T>
DYNAMO_HD T tanh_(T x) {
#if defined(__CUDA_ARCH__)
  return ::tanh(x);
#else
  // tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|)
  const T e = host_exp(T(-2) * std::fabs(x));
  return std::copysign((T(1) - e) / (T(1) + e), x);
#endif
}

// ---------------------------------------------------------------------------
// Tanh cell
// ---------------------------------------------------------------------------

// Forward for one unit: z = tanh(a), a the full pre-activation.
template <typename T>
DYNAMO_HD T tanh_cell_forward(T pre_activation) {
  return tanh_(pre_activation);
}

// Backward for one unit.
//   grad_out: dL/dz_t from the loss at step t (the op's output gradient)
//   grad_rec: dL/dz_t flowing back from step t+1 through W_h
//   z:        the cell's output z_t
// Returns dL/da_t = (grad_out + grad_rec) * (1 - z^2).
template <typename T>
DYNAMO_HD T tanh_cell_backward(T grad_out, T grad_rec, T z) {
  return (grad_out + grad_rec) * (T(1) - z * z);
}

// ---------------------------------------------------------------------------
// GRU cell (PyTorch gate convention)
// ---------------------------------------------------------------------------

// Forward for one unit. xr, xu, xn: input-side pre-activations (W_x x + b_ih + U theta);
// hr, hu, hn: recurrent ones (W_h z_prev + b_hh); h_prev: z_{t-1}.
// Writes the gates r, u, the candidate n (what the backward needs, with hn) and z_t.
template <typename T>
DYNAMO_HD void gru_cell_forward(T xr, T xu, T xn, T hr, T hu, T hn, T h_prev, T& r, T& u, T& n, T& h) {
  r = sigmoid_(xr + hr);
  u = sigmoid_(xu + hu);
  n = tanh_(xn + r * hn);
  h = n + u * (h_prev - n);  // = (1 - u) n + u h_prev
}

// Backward for one unit. dh = grad_out + grad_rec is dL/dz_t. Writes
//   d_xr, d_xu, d_xn: dL/d(input-side pre-activations) (also dL/d b_ih, dL/d cond),
//   d_hn:             dL/d(W_hn z_prev + b_hn) = d_xn * r (for r and u the recurrent
//                     gradients equal d_xr and d_xu),
//   d_h_prev:         the direct part of dL/dz_{t-1}, dh * u (W_h^T d_gh is added by a GEMM).
template <typename T>
DYNAMO_HD void gru_cell_backward(T grad_out, T grad_rec, T r, T u, T n, T hn, T h_prev, T& d_xr, T& d_xu,
                                 T& d_xn, T& d_hn, T& d_h_prev) {
  const T dh = grad_out + grad_rec;
  const T dn = dh * (T(1) - u);
  d_xn = dn * (T(1) - n * n);
  d_hn = d_xn * r;
  d_xr = d_xn * hn * r * (T(1) - r);
  d_xu = dh * (h_prev - n) * u * (T(1) - u);
  d_h_prev = dh * u;
}

// ---------------------------------------------------------------------------
// Jacobians of one step z_t = cell(z_{t-1}) with respect to z_{t-1}, per unit j
// (the fixed-point solver's rows): row j of dcell/dz is
//   tanh: a * W_h[j, :]                                  a = 1 - z_t^2
//   GRU:  a_r W_hr[j, :] + a_u W_hu[j, :] + a_n W_hn[j, :] + diag * e_j with
//         a_n = (1 - u)(1 - n^2) r,  a_r = (1 - u)(1 - n^2) ghn r (1 - r),
//         a_u = (z_prev - n) u (1 - u),  diag = u,  ghn = W_hn z_prev + b_hn.
// ---------------------------------------------------------------------------
template <typename T>
DYNAMO_HD T tanh_jacobian_coefficient(T z) {
  return T(1) - z * z;
}

template <typename T>
DYNAMO_HD void gru_jacobian_coefficients(T r, T u, T n, T ghn, T z_prev, T& a_r, T& a_u, T& a_n, T& diag) {
  const T dn = (T(1) - u) * (T(1) - n * n);
  a_n = dn * r;
  a_r = dn * ghn * r * (T(1) - r);
  a_u = (z_prev - n) * u * (T(1) - u);
  diag = u;
}

// ---------------------------------------------------------------------------
// LSTM cell
// ---------------------------------------------------------------------------

// Forward for one unit from the full pre-activations p_i, p_f, p_g, p_o and c_{t-1}.
// Writes the gates, c_t, tanh(c_t) and h_t.
template <typename T>
DYNAMO_HD void lstm_cell_forward(T pi, T pf, T pg, T po, T c_prev, T& i, T& f, T& g, T& o, T& c, T& tc, T& h) {
  i = sigmoid_(pi);
  f = sigmoid_(pf);
  g = tanh_(pg);
  o = sigmoid_(po);
  c = f * c_prev + i * g;
  tc = tanh_(c);
  h = o * tc;
}

// Jacobian of one LSTM step [h; c] -> [h'; c'] for unit j, from the gates, tanh(c') and c:
//   dc'_j/dh   = a_i W_hi[j, :] + a_f W_hf[j, :] + a_g W_hg[j, :]
//   dc'_j/dc_j = f                                (no other column of c)
//   dh'_j/dh   = a_o W_ho[j, :] + k dc'_j/dh
//   dh'_j/dc_j = k f
// with a_i = g i (1 - i), a_f = c f (1 - f), a_g = i (1 - g^2), a_o = tanh(c') o (1 - o),
// k = o (1 - tanh(c')^2).
template <typename T>
DYNAMO_HD void lstm_jacobian_coefficients(T i, T f, T g, T o, T tc, T c_prev, T& a_i, T& a_f, T& a_g, T& a_o,
                                          T& k) {
  a_i = g * i * (T(1) - i);
  a_f = c_prev * f * (T(1) - f);
  a_g = i * (T(1) - g * g);
  a_o = tc * o * (T(1) - o);
  k = o * (T(1) - tc * tc);
}

// ---------------------------------------------------------------------------
// Fixed-point residuals F(z) = cell(z) - z, one unit at a time (the Newton solvers of
// newton_fixed_points, CPU and CUDA), from the input side gi and the recurrent side
// gh = W_hh h + b_hh (G blocks of H rows each).
// ---------------------------------------------------------------------------

// Unit j of the tanh or GRU cell (state z = h, H = D). Returns F_j and stores what the
// Jacobian needs: tanh coef[j] = 1 - h_j^2; GRU coef[j], coef[D + j], coef[2D + j],
// coef[3D + j] = r, u, n, ghn.
template <typename T>
DYNAMO_HD T fixed_point_residual_unit(bool gru, const T* gi, const T* gh, const T* z, int64_t j, int64_t D, T* coef) {
  T h;
  if (!gru) {
    h = tanh_cell_forward(gi[j] + gh[j]);
    coef[j] = tanh_jacobian_coefficient(h);
  } else {
    T r, u, n;
    gru_cell_forward(gi[j], gi[D + j], gi[2 * D + j], gh[j], gh[D + j], gh[2 * D + j], z[j], r, u, n, h);
    coef[j] = r;
    coef[D + j] = u;
    coef[2 * D + j] = n;
    coef[3 * D + j] = gh[2 * D + j];
  }
  return h - z[j];
}

// Unit j of the LSTM cell (state z = [h; c], D = 2H). Writes F[j] = h'_j - h_j and
// F[H + j] = c'_j - c_j, returns F[j]^2 + F[H + j]^2, and stores coef[j], coef[H + j],
// coef[2H + j], coef[3H + j], coef[4H + j] = i, f, g, o, tanh(c'_j).
template <typename T>
DYNAMO_HD T lstm_fixed_point_residual_unit(const T* gi, const T* gh, const T* z, int64_t j, int64_t H, T* coef,
                                           T* F) {
  T i, f, g, o, c, tc, h;
  lstm_cell_forward(gi[j] + gh[j], gi[H + j] + gh[H + j], gi[2 * H + j] + gh[2 * H + j],
                    gi[3 * H + j] + gh[3 * H + j], z[H + j], i, f, g, o, c, tc, h);
  coef[j] = i;
  coef[H + j] = f;
  coef[2 * H + j] = g;
  coef[3 * H + j] = o;
  coef[4 * H + j] = tc;
  F[j] = h - z[j];
  F[H + j] = c - z[H + j];
  return F[j] * F[j] + F[H + j] * F[H + j];
}

// Row r of dcell/dz of any cell in one form, for the CUDA solver's entry-by-entry
// Jacobian (state size D, H hidden units, G gate blocks; u = r mod H):
//   dcell_r/dz_a = sum_g jc[g] W_hh[g H + u, a]   (a < H)
//                + extra                          (a = extra_col)
// tanh: jc = (1 - h^2), extra 0; GRU: jc = (a_r, a_u, a_n), extra = u at column r;
// LSTM: rows of h: jc = k (a_i, a_f, a_g) + (0, 0, 0, a_o), extra = k f at column H + r;
// rows of c: jc = (a_i, a_f, a_g, 0), extra = f at column r. coef as stored above.
template <typename T>
DYNAMO_HD int jacobian_row(int kind_gates, const T* coef, const T* z, int64_t r, int64_t H, T* jc, T& extra) {
  if (kind_gates == 1) {
    jc[0] = coef[r];
    extra = T(0);
    return static_cast<int>(r);
  }
  if (kind_gates == 3) {
    gru_jacobian_coefficients(coef[r], coef[H + r], coef[2 * H + r], coef[3 * H + r], z[r], jc[0], jc[1], jc[2],
                              extra);
    return static_cast<int>(r);
  }
  const int64_t u = r < H ? r : r - H;
  T a_i, a_f, a_g, a_o, k;
  const T f = coef[H + u];
  lstm_jacobian_coefficients(coef[u], f, coef[2 * H + u], coef[3 * H + u], coef[4 * H + u], z[H + u], a_i, a_f, a_g,
                             a_o, k);
  const T s = r < H ? k : T(1);
  jc[0] = s * a_i;
  jc[1] = s * a_f;
  jc[2] = s * a_g;
  jc[3] = r < H ? a_o : T(0);
  extra = s * f;
  return static_cast<int>(H + u);
}

}  // namespace cell
}  // namespace dynamo_ext
