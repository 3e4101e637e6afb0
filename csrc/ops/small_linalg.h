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

namespace dynamo_ext {
namespace linalg {

// LU factorisation with partial pivoting, A = P L U (L unit lower, both in A).
// Returns min |u_ii| / max |u_ii|, a cheap conditioning estimate (0 if singular).
template <typename T>
DYNAMO_LINALG_INLINE T lu_factor(T* A, int64_t n, int64_t* piv) {
  T max_pivot = 0, min_pivot = INFINITY;
  for (int64_t k = 0; k < n; ++k) {
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
    T* row_k = A + k * n;
    for (int64_t i = k + 1; i < n; ++i) {
      T* row_i = A + i * n;
      const T l = row_i[k] * inv;
      row_i[k] = l;
      for (int64_t j = k + 1; j < n; ++j) row_i[j] -= l * row_k[j];
    }
  }
  return max_pivot > T(0) ? min_pivot / max_pivot : T(0);
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
    T s = b[i];
    for (int64_t j = 0; j < i; ++j) s -= A[i * n + j] * b[j];
    b[i] = s;
  }
  for (int64_t i = n - 1; i >= 0; --i) {
    T s = b[i];
    for (int64_t j = i + 1; j < n; ++j) s -= A[i * n + j] * b[j];
    b[i] = s / A[i * n + i];
  }
}

// Cholesky factorisation A = L L^T of a symmetric positive definite matrix
// (lower triangle used and overwritten). Returns false if A is not positive definite.
template <typename T>
DYNAMO_LINALG_INLINE bool cholesky_factor(T* A, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    T d = A[j * n + j];
    for (int64_t k = 0; k < j; ++k) d -= A[j * n + k] * A[j * n + k];
    if (!(d > T(0))) return false;
    d = std::sqrt(d);
    A[j * n + j] = d;
    const T inv = T(1) / d;
    for (int64_t i = j + 1; i < n; ++i) {
      T s = A[i * n + j];
      const T* ri = A + i * n;
      const T* rj = A + j * n;
      for (int64_t k = 0; k < j; ++k) s -= ri[k] * rj[k];
      A[i * n + j] = s * inv;
    }
  }
  return true;
}

// Solve L L^T x = b with the factor of cholesky_factor; b is overwritten with x.
template <typename T>
DYNAMO_LINALG_INLINE void cholesky_solve(const T* L, int64_t n, T* b) {
  for (int64_t i = 0; i < n; ++i) {
    T s = b[i];
    for (int64_t k = 0; k < i; ++k) s -= L[i * n + k] * b[k];
    b[i] = s / L[i * n + i];
  }
  for (int64_t i = n - 1; i >= 0; --i) {
    T s = b[i];
    for (int64_t k = i + 1; k < n; ++k) s -= L[k * n + i] * b[k];
    b[i] = s / L[i * n + i];
  }
}

}  // namespace linalg
}  // namespace dynamo_ext
