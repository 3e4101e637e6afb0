// Dense solves for one small system (the fixed-point solver's per-candidate
// Newton and Levenberg-Marquardt steps), in place on row-major n x n arrays.
// Plain loops over contiguous rows: the compiler vectorises the row updates
// (always inlined, so that callers built for several instruction sets get each).
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__GNUC__) && !defined(__CUDACC__)
#define DYNAMO_LINALG_INLINE inline __attribute__((always_inline))
#else
#define DYNAMO_LINALG_INLINE inline
#endif
#define DYNAMO_RESTRICT __restrict__
// a reduction the compiler may vectorise (reassociate); needs -fopenmp-simd, ignored without it
#define DYNAMO_SIMD_SUM(var) _Pragma(DYNAMO_STR(omp simd reduction(+ : var)))
#define DYNAMO_STR(x) #x

namespace dynamo_ext {
namespace linalg {

// LU factorisation with partial pivoting, A = P L U (L unit lower, both in A).
// Returns min |u_ii| / max |u_ii|, a cheap conditioning estimate (0 if singular).
//
// Blocked right-looking form (LAPACK's getrf order): a panel of kPanel columns
// is factorised with rank-1 updates restricted to the panel, the panel's rows
// of U are finished with a unit-lower triangular solve, and the trailing
// matrix gets one rank-kPanel update. Each trailing element is then loaded and
// stored once per panel instead of once per column: kPanel times fewer passes
// over the D x D matrix, which is what bounds the unblocked form's speed.
// Row swaps exchange whole rows, so the trailing part is swapped before its update.
constexpr int64_t kPanel = 8;

template <typename T>
DYNAMO_LINALG_INLINE T lu_factor(T* A, int64_t n, int64_t* piv) {
  T max_pivot = 0, min_pivot = INFINITY;
  for (int64_t k0 = 0; k0 < n; k0 += kPanel) {
    const int64_t k1 = k0 + kPanel < n ? k0 + kPanel : n;  // panel columns [k0, k1)
    for (int64_t k = k0; k < k1; ++k) {
      int64_t p = k;
      T best = std::fabs(A[k * n + k]);
      for (int64_t i = k + 1; i < n; ++i) {
        const T v = std::fabs(A[i * n + k]);
        if (v > best) {
          best = v;
          p = i;
        }
      }
      piv[k] = p;
      if (p != k) {
        for (int64_t j = 0; j < n; ++j) {
          const T tmp = A[k * n + j];
          A[k * n + j] = A[p * n + j];
          A[p * n + j] = tmp;
        }
      }
      max_pivot = best > max_pivot ? best : max_pivot;
      min_pivot = best < min_pivot ? best : min_pivot;
      if (best == T(0)) return T(0);
      const T inv = T(1) / A[k * n + k];
      const T* row_k = A + k * n;
      for (int64_t i = k + 1; i < n; ++i) {
        T* row_i = A + i * n;
        const T l = row_i[k] * inv;
        row_i[k] = l;
        for (int64_t j = k + 1; j < k1; ++j) row_i[j] -= l * row_k[j];
      }
    }
    if (k1 == n) break;
    // U12: rows [k0, k1), columns [k1, n) <- L11^{-1} A12
    for (int64_t k = k0; k < k1; ++k) {
      const T* row_k = A + k * n;
      for (int64_t i = k + 1; i < k1; ++i) {
        T* row_i = A + i * n;
        const T l = row_i[k];
        for (int64_t j = k1; j < n; ++j) row_i[j] -= l * row_k[j];
      }
    }
    // A22 -= L21 U12, one row of A22 at a time against four rows of U12 (few enough row
    // pointers to stay in registers; rows of U12 and of A22 never overlap)
    const int64_t kb = k1 - k0;
    for (int64_t i = k1; i < n; ++i) {
      T* DYNAMO_RESTRICT row_i = A + i * n;
      int64_t t = 0;
      for (; t + 4 <= kb; t += 4) {
        const T* DYNAMO_RESTRICT u0 = A + (k0 + t) * n;
        const T* DYNAMO_RESTRICT u1 = u0 + n;
        const T* DYNAMO_RESTRICT u2 = u1 + n;
        const T* DYNAMO_RESTRICT u3 = u2 + n;
        const T l0 = row_i[k0 + t], l1 = row_i[k0 + t + 1], l2 = row_i[k0 + t + 2], l3 = row_i[k0 + t + 3];
        for (int64_t j = k1; j < n; ++j) row_i[j] -= l0 * u0[j] + l1 * u1[j] + l2 * u2[j] + l3 * u3[j];
      }
      for (; t < kb; ++t) {
        const T* DYNAMO_RESTRICT u = A + (k0 + t) * n;
        const T l = row_i[k0 + t];
        for (int64_t j = k1; j < n; ++j) row_i[j] -= l * u[j];
      }
    }
  }
  return max_pivot > T(0) ? min_pivot / max_pivot : T(0);
}

// J^T J (lower triangle, row-major n x n, overwritten) and -J^T F for a row-major n x n J:
// rows of J are taken kRows at a time, so that each element of J^T J is loaded and
// stored once per block of rows instead of once per row.
constexpr int64_t kRows = 8;

template <typename T>
DYNAMO_LINALG_INLINE void normal_equations(const T* J, const T* F, int64_t n, T* JtJ, T* rhs) {
  for (int64_t a = 0; a < n * n; ++a) JtJ[a] = T(0);
  for (int64_t a = 0; a < n; ++a) rhs[a] = T(0);
  for (int64_t i0 = 0; i0 < n; i0 += kRows) {
    const int64_t rb = i0 + kRows < n ? kRows : n - i0;
    for (int64_t a = 0; a < n; ++a) {
      T ja[kRows];
      T r = 0;
      for (int64_t t = 0; t < rb; ++t) {
        ja[t] = J[(i0 + t) * n + a];
        r += ja[t] * F[i0 + t];
      }
      rhs[a] -= r;
      T* DYNAMO_RESTRICT row = JtJ + a * n;
      const T* DYNAMO_RESTRICT jb = J + i0 * n;
      if (rb == kRows) {
        for (int64_t b = 0; b <= a; ++b) {
          T s = row[b];
          for (int64_t t = 0; t < kRows; ++t) s += ja[t] * jb[t * n + b];
          row[b] = s;
        }
      } else {
        for (int64_t t = 0; t < rb; ++t)
          for (int64_t b = 0; b <= a; ++b) row[b] += ja[t] * jb[t * n + b];
      }
    }
  }
}

// Solve A x = b with the factors of lu_factor; b is overwritten with x.
template <typename T>
DYNAMO_LINALG_INLINE void lu_solve(const T* A, int64_t n, const int64_t* piv, T* b) {
  for (int64_t k = 0; k < n; ++k) {
    if (piv[k] != k) {
      const T tmp = b[k];
      b[k] = b[piv[k]];
      b[piv[k]] = tmp;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    T s = 0;
    DYNAMO_SIMD_SUM(s)
    for (int64_t j = 0; j < i; ++j) s += A[i * n + j] * b[j];
    b[i] -= s;
  }
  for (int64_t i = n - 1; i >= 0; --i) {
    T s = 0;
    DYNAMO_SIMD_SUM(s)
    for (int64_t j = i + 1; j < n; ++j) s += A[i * n + j] * b[j];
    b[i] = (b[i] - s) / A[i * n + i];
  }
}

// Cholesky factorisation A = L L^T of a symmetric positive definite matrix
// (lower triangle used and overwritten). Returns false if A is not positive definite.
//
// Blocked right-looking form, like lu_factor: a panel of kPanel columns is
// factorised (its inner products run over the panel's columns only), then the
// trailing lower triangle gets one rank-kPanel update. The panel's rows below
// the diagonal block are first copied, transposed, into work (kPanel x n), so
// that the update of a trailing row is a contiguous, vectorised sweep over
// four work rows at a time. The unblocked form's short inner products (one
// per element, up to n long) were a third of the damped solver's time at D = 256.
template <typename T>
DYNAMO_LINALG_INLINE bool cholesky_factor(T* A, int64_t n, T* work) {
  for (int64_t k0 = 0; k0 < n; k0 += kPanel) {
    const int64_t k1 = k0 + kPanel < n ? k0 + kPanel : n;  // panel columns [k0, k1)
    for (int64_t j = k0; j < k1; ++j) {
      const T* rj = A + j * n;
      T d = rj[j];
      for (int64_t k = k0; k < j; ++k) d -= rj[k] * rj[k];
      if (!(d > T(0))) return false;
      d = std::sqrt(d);
      A[j * n + j] = d;
      const T inv = T(1) / d;
      for (int64_t i = j + 1; i < n; ++i) {
        T* ri = A + i * n;
        T s = ri[j];
        for (int64_t k = k0; k < j; ++k) s -= ri[k] * rj[k];
        ri[j] = s * inv;
      }
    }
    if (k1 == n) break;
    const int64_t kb = k1 - k0;
    for (int64_t t = 0; t < kb; ++t)
      for (int64_t j = k1; j < n; ++j) work[t * n + j] = A[j * n + k0 + t];
    // A22 -= L21 L21^T (lower triangle), one row at a time against four rows of L21^T
    for (int64_t i = k1; i < n; ++i) {
      T* DYNAMO_RESTRICT row_i = A + i * n;
      int64_t t = 0;
      for (; t + 4 <= kb; t += 4) {
        const T* DYNAMO_RESTRICT p0 = work + t * n;
        const T* DYNAMO_RESTRICT p1 = p0 + n;
        const T* DYNAMO_RESTRICT p2 = p1 + n;
        const T* DYNAMO_RESTRICT p3 = p2 + n;
        const T l0 = row_i[k0 + t], l1 = row_i[k0 + t + 1], l2 = row_i[k0 + t + 2], l3 = row_i[k0 + t + 3];
        for (int64_t j = k1; j <= i; ++j) row_i[j] -= l0 * p0[j] + l1 * p1[j] + l2 * p2[j] + l3 * p3[j];
      }
      for (; t < kb; ++t) {
        const T* DYNAMO_RESTRICT p = work + t * n;
        const T l = row_i[k0 + t];
        for (int64_t j = k1; j <= i; ++j) row_i[j] -= l * p[j];
      }
    }
  }
  return true;
}

// Solve L L^T x = b with the factor of cholesky_factor; b is overwritten with x.
template <typename T>
DYNAMO_LINALG_INLINE void cholesky_solve(const T* L, int64_t n, T* b) {
  for (int64_t i = 0; i < n; ++i) {
    T s = 0;
    DYNAMO_SIMD_SUM(s)
    for (int64_t k = 0; k < i; ++k) s += L[i * n + k] * b[k];
    b[i] = (b[i] - s) / L[i * n + i];
  }
  // L^T x = y by columns of L^T (rows of L): x_i final, then subtract its multiples
  for (int64_t i = n - 1; i >= 0; --i) {
    b[i] /= L[i * n + i];
    const T xi = b[i];
    const T* DYNAMO_RESTRICT li = L + i * n;
    for (int64_t k = 0; k < i; ++k) b[k] -= li[k] * xi;
  }
}

}  // namespace linalg
}  // namespace dynamo_ext
