// Dense solves for one small system (the fixed-point solver's per-candidate
// Newton and Levenberg-Marquardt steps), in place on row-major n x n arrays.
// The O(n^3) work of each factorisation is one register-tiled kernel,
// rank_update_tile, written with GCC vector types; the rest are plain loops over
// contiguous rows (always inlined, so that callers built for several instruction
// sets get each).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__GNUC__) && !defined(__CUDACC__)
#define DYNAMO_LINALG_INLINE inline __attribute__((always_inline))
#else
#define DYNAMO_LINALG_INLINE inline
#endif
#define DYNAMO_RESTRICT __restrict__
// a reduction the compiler may vectorise (reassociate); needs -fopenmp-simd, ignored without it
#define DYNAMO_SIMD_SUM(var) _Pragma(DYNAMO_STR(omp simd reduction(+ : var)))
#define DYNAMO_SIMD_MAX(var) _Pragma(DYNAMO_STR(omp simd reduction(max : var)))
#define DYNAMO_STR(x) #x

namespace dynamo_ext {
namespace linalg {

// Columns per panel of the blocked factorisations (and rows of J per block of J^T J).
constexpr int64_t kPanel = 8;

// Register-tiled rank-kb update of R rows, the inner kernel of every blocked
// factorisation below:  C[r][j] (+ or -)= sum_{t < kb} L[r][t] * P[t][j]  for j in [j0, j1),
// with C[r] = C + r * ldc, L[r] = L + r * ldl (kb coefficients), P[t] = P + t * ldp.
// A tile of R rows by two 64-byte vectors of columns is held in registers for all kb
// terms: each P vector loaded serves R rows, each coefficient broadcast serves two
// vectors, and C is loaded and stored once. (The row-at-a-time form loaded one P vector
// per multiply-add and was load-bound at about 40% of the multiply-add peak.)
// L may lie in the same rows as C, outside the columns [j0, j1).
#if defined(__GNUC__) && !defined(__CUDACC__)
template <typename T>
struct Vec64 {
  // unaligned (element-aligned) and allowed to alias T, so that rows of T load and store directly
  typedef T type __attribute__((vector_size(64), aligned(sizeof(T)), may_alias));
};

template <typename T, int R, bool Add>
DYNAMO_LINALG_INLINE void rank_update_tile(T* C, int64_t ldc, const T* L, int64_t ldl, const T* P, int64_t ldp,
                                           int64_t kb, int64_t j0, int64_t j1) {
  using V = typename Vec64<T>::type;
  constexpr int64_t W = sizeof(V) / sizeof(T);
  int64_t j = j0;
  for (; j + 2 * W <= j1; j += 2 * W) {
    V acc[R][2];
    for (int r = 0; r < R; ++r) {
      acc[r][0] = *reinterpret_cast<const V*>(C + r * ldc + j);
      acc[r][1] = *reinterpret_cast<const V*>(C + r * ldc + j + W);
    }
    for (int64_t t = 0; t < kb; ++t) {
      V p0, p1;
      p0 = *reinterpret_cast<const V*>(P + t * ldp + j);
      p1 = *reinterpret_cast<const V*>(P + t * ldp + j + W);
      for (int r = 0; r < R; ++r) {
        const T l = L[r * ldl + t];
        if (Add) {
          acc[r][0] += p0 * l;
          acc[r][1] += p1 * l;
        } else {
          acc[r][0] -= p0 * l;
          acc[r][1] -= p1 * l;
        }
      }
    }
    for (int r = 0; r < R; ++r) {
      *reinterpret_cast<V*>(C + r * ldc + j) = acc[r][0];
      *reinterpret_cast<V*>(C + r * ldc + j + W) = acc[r][1];
    }
  }
  if (j + W <= j1) {
    V acc[R];
    for (int r = 0; r < R; ++r) acc[r] = *reinterpret_cast<const V*>(C + r * ldc + j);
    for (int64_t t = 0; t < kb; ++t) {
      V p0;
      p0 = *reinterpret_cast<const V*>(P + t * ldp + j);
      for (int r = 0; r < R; ++r) {
        if (Add)
          acc[r] += p0 * L[r * ldl + t];
        else
          acc[r] -= p0 * L[r * ldl + t];
      }
    }
    for (int r = 0; r < R; ++r) *reinterpret_cast<V*>(C + r * ldc + j) = acc[r];
    j += W;
  }
  for (; j < j1; ++j) {
    for (int r = 0; r < R; ++r) {
      T s = 0;
      for (int64_t t = 0; t < kb; ++t) s += L[r * ldl + t] * P[t * ldp + j];
      C[r * ldc + j] += Add ? s : -s;
    }
  }
}
#else
template <typename T, int R, bool Add>
DYNAMO_LINALG_INLINE void rank_update_tile(T* C, int64_t ldc, const T* L, int64_t ldl, const T* P, int64_t ldp,
                                           int64_t kb, int64_t j0, int64_t j1) {
  for (int r = 0; r < R; ++r)
    for (int64_t j = j0; j < j1; ++j) {
      T s = 0;
      for (int64_t t = 0; t < kb; ++t) s += L[r * ldl + t] * P[t * ldp + j];
      C[r * ldc + j] += Add ? s : -s;
    }
}
#endif

// Rows [i0, i1) of C, in tiles of kTileRows, through rank_update_tile; the columns of
// row tile starting at i are [j0, col_end(i)).
constexpr int kTileRows = 8;

template <typename T, bool Add, typename ColEnd>
DYNAMO_LINALG_INLINE void rank_update_rows(T* C, int64_t ldc, const T* L, int64_t ldl, const T* P, int64_t ldp,
                                           int64_t kb, int64_t i0, int64_t i1, int64_t j0, ColEnd col_end) {
  int64_t i = i0;
  for (; i + kTileRows <= i1; i += kTileRows)
    rank_update_tile<T, kTileRows, Add>(C + i * ldc, ldc, L + i * ldl, ldl, P, ldp, kb, j0, col_end(i, kTileRows));
  for (; i < i1; ++i) rank_update_tile<T, 1, Add>(C + i * ldc, ldc, L + i * ldl, ldl, P, ldp, kb, j0, col_end(i, 1));
}

// Rows B[0..kb) of a row-major matrix (row stride ldb), columns [j0, j1), overwritten
// with L^{-1} B for the unit lower triangular L whose row i is L + i * ldl (kb <= kPanel).
// Like rank_update_tile, a block of two vectors of columns of all kb rows stays in
// registers through the whole elimination.
template <typename T>
DYNAMO_LINALG_INLINE void unit_lower_solve_rows(const T* L, int64_t ldl, T* B, int64_t ldb, int64_t kb, int64_t j0,
                                                int64_t j1) {
  int64_t j = j0;
#if defined(__GNUC__) && !defined(__CUDACC__)
  using V = typename Vec64<T>::type;
  constexpr int64_t W = sizeof(V) / sizeof(T);
  if (kb == kPanel) {
    for (; j + 2 * W <= j1; j += 2 * W) {
      V b[kPanel][2];
      for (int r = 0; r < kPanel; ++r) {
        b[r][0] = *reinterpret_cast<const V*>(B + r * ldb + j);
        b[r][1] = *reinterpret_cast<const V*>(B + r * ldb + j + W);
      }
      for (int k = 0; k < kPanel; ++k)
        for (int i = k + 1; i < kPanel; ++i) {
          const T l = L[i * ldl + k];
          b[i][0] -= b[k][0] * l;
          b[i][1] -= b[k][1] * l;
        }
      for (int r = 1; r < kPanel; ++r) {
        *reinterpret_cast<V*>(B + r * ldb + j) = b[r][0];
        *reinterpret_cast<V*>(B + r * ldb + j + W) = b[r][1];
      }
    }
  }
#endif
  for (int64_t k = 0; k < kb; ++k)
    for (int64_t i = k + 1; i < kb; ++i) {
      const T l = L[i * ldl + k];
      for (int64_t c = j; c < j1; ++c) B[i * ldb + c] -= l * B[k * ldb + c];
    }
}

// Between m rows of kb columns of a row-major matrix (R[i] = R + i * ldr) and the same
// block stored by columns (C + t * ldc, each column contiguous): to_columns copies R
// into C, else C into R. Full blocks of kPanel rows and columns go through registers as
// 8 x 8 transposes (three rounds of two-vector shuffles); the element-at-a-time copy
// was a tenth of the solver's time at n = 64.
template <typename T>
DYNAMO_LINALG_INLINE void copy_panel(T* R, int64_t ldr, T* C, int64_t ldc, int64_t m, int64_t kb, bool to_columns) {
  int64_t i = 0;
#if defined(__GNUC__) && !defined(__CUDACC__)
  static_assert(kPanel == 8, "copy_panel transposes 8 x 8 blocks");
  typedef T V __attribute__((vector_size(8 * sizeof(T)), aligned(sizeof(T)), may_alias));
  typedef std::conditional_t<sizeof(T) == 8, int64_t, int32_t> I;
  typedef I M __attribute__((vector_size(8 * sizeof(T))));
  if (kb == kPanel) {
    for (; i + 8 <= m; i += 8) {
      V a[8], b[8];
      for (int r = 0; r < 8; ++r)
        a[r] = to_columns ? *reinterpret_cast<const V*>(R + (i + r) * ldr) : *reinterpret_cast<const V*>(C + r * ldc + i);
      for (int r = 0; r < 8; r += 2) {  // pairs: (a0 b0 a2 b2 ...), (a1 b1 a3 b3 ...)
        b[r] = __builtin_shuffle(a[r], a[r + 1], M{0, 8, 2, 10, 4, 12, 6, 14});
        b[r + 1] = __builtin_shuffle(a[r], a[r + 1], M{1, 9, 3, 11, 5, 13, 7, 15});
      }
      for (int r = 0; r < 8; r += 4)
        for (int q = 0; q < 2; ++q) {
          a[r + q] = __builtin_shuffle(b[r + q], b[r + q + 2], M{0, 1, 8, 9, 4, 5, 12, 13});
          a[r + q + 2] = __builtin_shuffle(b[r + q], b[r + q + 2], M{2, 3, 10, 11, 6, 7, 14, 15});
        }
      for (int q = 0; q < 4; ++q) {
        b[q] = __builtin_shuffle(a[q], a[q + 4], M{0, 1, 2, 3, 8, 9, 10, 11});
        b[q + 4] = __builtin_shuffle(a[q], a[q + 4], M{4, 5, 6, 7, 12, 13, 14, 15});
      }
      for (int t = 0; t < 8; ++t) {
        if (to_columns)
          *reinterpret_cast<V*>(C + t * ldc + i) = b[t];
        else
          *reinterpret_cast<V*>(R + (i + t) * ldr) = b[t];
      }
    }
  }
#endif
  for (; i < m; ++i)
    for (int64_t t = 0; t < kb; ++t) {
      if (to_columns)
        C[t * ldc + i] = R[i * ldr + t];
      else
        R[i * ldr + t] = C[t * ldc + i];
    }
}

// The first i in [i0, m) with |v[i]| == best, or m - 1 if none (a vector of W entries
// compared at a time, then a scalar scan within it: the row-at-a-time scan was 7% of
// the solver's time at n = 64).
template <typename T>
DYNAMO_LINALG_INLINE int64_t first_of_magnitude(const T* v, int64_t i0, int64_t m, T best) {
  int64_t i = i0;
#if defined(__GNUC__) && !defined(__CUDACC__)
  using V = typename Vec64<T>::type;
  constexpr int64_t W = sizeof(V) / sizeof(T);
  const V hi = V{} + best, lo = V{} - best;
  for (; i + W <= m; i += W) {
    const V x = *reinterpret_cast<const V*>(v + i);
    const auto hit = (x == hi) | (x == lo);
    bool any = false;
    for (int64_t l = 0; l < W; ++l) any |= hit[l] != 0;
    if (any) break;
  }
#endif
  while (i < m - 1 && !(std::fabs(v[i]) == best)) ++i;
  return i;
}

// LU factorisation with partial pivoting, A = P L U (L unit lower, both in A).
// Returns min |u_ii| / max |u_ii|, a cheap conditioning estimate (0 if singular).
// work: kPanel * n scratch.
//
// Blocked right-looking form (LAPACK's getrf order). A panel of kPanel columns is
// copied into work column by column (each column contiguous) and factorised there:
// the pivot search, the scaling and the rank-1 updates run down contiguous columns
// rather than across n rows of at most kPanel elements. The panel goes back into A,
// its row swaps are applied to the rest of the rows, the panel's rows of U are finished
// with a unit-lower triangular solve, and the trailing matrix gets one rank-kPanel update
// (rank_update_rows): each trailing element is loaded and stored once per panel.
template <typename T>
DYNAMO_LINALG_INLINE T lu_factor(T* A, int64_t n, int64_t* piv, T* work) {
  T max_pivot = 0, min_pivot = INFINITY;
  for (int64_t k0 = 0; k0 < n; k0 += kPanel) {
    const int64_t k1 = k0 + kPanel < n ? k0 + kPanel : n;  // panel columns [k0, k1)
    const int64_t kb = k1 - k0, m = n - k0;                  // panel width, panel rows [k0, n)
    copy_panel(A + k0 * n + k0, n, work, m, m, kb, true);
    for (int64_t t = 0; t < kb; ++t) {
      T* DYNAMO_RESTRICT col = work + t * m;
      // pivot: the first row of largest |value| (a vectorised max, then a scan for it)
      T best = 0;
      DYNAMO_SIMD_MAX(best)
      for (int64_t i = t; i < m; ++i) {
        const T v = std::fabs(col[i]);
        best = v > best ? v : best;
      }
      int64_t p = first_of_magnitude(col, t, m, best);
      piv[k0 + t] = k0 + p;
      if (p != t) {
        for (int64_t c = 0; c < kb; ++c) {
          const T tmp = work[c * m + t];
          work[c * m + t] = work[c * m + p];
          work[c * m + p] = tmp;
        }
      }
      max_pivot = best > max_pivot ? best : max_pivot;
      min_pivot = best < min_pivot ? best : min_pivot;
      if (best == T(0)) return T(0);
      const T inv = T(1) / col[t];
      for (int64_t i = t + 1; i < m; ++i) col[i] *= inv;
      for (int64_t c = t + 1; c < kb; ++c) {
        T* DYNAMO_RESTRICT other = work + c * m;
        const T u = other[t];
        for (int64_t i = t + 1; i < m; ++i) other[i] -= col[i] * u;
      }
    }
    copy_panel(A + k0 * n + k0, n, work, m, m, kb, false);
    // the panel's row swaps, in order, on the columns outside the panel
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t p = piv[k];
      if (p == k) continue;
      T* DYNAMO_RESTRICT rk = A + k * n;
      T* DYNAMO_RESTRICT rp = A + p * n;
      for (int64_t j = 0; j < k0; ++j) {
        const T tmp = rk[j];
        rk[j] = rp[j];
        rp[j] = tmp;
      }
      for (int64_t j = k1; j < n; ++j) {
        const T tmp = rk[j];
        rk[j] = rp[j];
        rp[j] = tmp;
      }
    }
    if (k1 == n) break;
    // U12: rows [k0, k1), columns [k1, n) <- L11^{-1} A12
    unit_lower_solve_rows(A + k0 * n + k0, n, A + k0 * n, n, kb, k1, n);
    // A22 -= L21 U12 (L21: columns [k0, k1) of the rows below the panel; U12: the panel's rows)
    rank_update_rows<T, false>(A, n, A + k0, n, A + k0 * n, n, kb, k1, n, k1,
                               [n](int64_t, int64_t) { return n; });
  }
  return max_pivot > T(0) ? min_pivot / max_pivot : T(0);
}

// J^T J (lower triangle, row-major n x n, overwritten; the strict upper triangle is
// clobbered) and -J^T F for a row-major n x n J. Rows of J are taken kPanel at a time:
// their columns are copied, transposed, into work (n x kPanel), and J^T J gets one
// rank-kPanel update of its lower triangle through rank_update_rows.
template <typename T>
DYNAMO_LINALG_INLINE void normal_equations(const T* J, const T* F, int64_t n, T* JtJ, T* rhs, T* work) {
  for (int64_t a = 0; a < n * n; ++a) JtJ[a] = T(0);
  for (int64_t a = 0; a < n; ++a) rhs[a] = T(0);
  for (int64_t i0 = 0; i0 < n; i0 += kPanel) {
    const int64_t rb = i0 + kPanel < n ? kPanel : n - i0;
    for (int64_t t = 0; t < rb; ++t)
      for (int64_t a = 0; a < n; ++a) work[a * kPanel + t] = J[(i0 + t) * n + a];
    for (int64_t a = 0; a < n; ++a) {
      T r = 0;
      for (int64_t t = 0; t < rb; ++t) r += work[a * kPanel + t] * F[i0 + t];
      rhs[a] -= r;
    }
    rank_update_rows<T, true>(JtJ, n, work, kPanel, J + i0 * n, n, rb, 0, n, 0,
                              [n](int64_t i, int64_t rows) { return i + rows < n ? i + rows : n; });
  }
}

// s[r] = sum_{j in [j0, j1)} A[r][j] * x[j] for the R rows A[r] = A + r * lda: one vector
// accumulator per row, one horizontal sum per row at the end (a row at a time, each short
// dot product paid its own reduction and scalar tail; at n = 64 the two triangular solves
// took a quarter of the solver's time).
template <typename T, int R>
DYNAMO_LINALG_INLINE void rows_dot(const T* A, int64_t lda, const T* x, int64_t j0, int64_t j1, T* s) {
  int64_t j = j0;
#if defined(__GNUC__) && !defined(__CUDACC__)
  using V = typename Vec64<T>::type;
  constexpr int64_t W = sizeof(V) / sizeof(T);
  V acc[R];
  for (int r = 0; r < R; ++r) acc[r] = V{};
  for (; j + W <= j1; j += W) {
    const V xv = *reinterpret_cast<const V*>(x + j);
    for (int r = 0; r < R; ++r) acc[r] += *reinterpret_cast<const V*>(A + r * lda + j) * xv;
  }
  for (int r = 0; r < R; ++r) {
    T sum = 0;
    for (int64_t l = 0; l < W; ++l) sum += acc[r][l];
    s[r] = sum;
  }
#else
  for (int r = 0; r < R; ++r) s[r] = 0;
#endif
  for (; j < j1; ++j)
    for (int r = 0; r < R; ++r) s[r] += A[r * lda + j] * x[j];
}

// rows_dot for rb <= kPanel rows: the kPanel-row kernel for a full block, else a row at a time.
template <typename T>
DYNAMO_LINALG_INLINE void block_rows_dot(const T* A, int64_t lda, const T* x, int64_t rb, int64_t j0, int64_t j1,
                                         T* s) {
  if (rb == kPanel)
    rows_dot<T, kPanel>(A, lda, x, j0, j1, s);
  else
    for (int64_t r = 0; r < rb; ++r) rows_dot<T, 1>(A + r * lda, lda, x, j0, j1, s + r);
}

// Solve A x = b with the factors of lu_factor; b is overwritten with x. Both
// substitutions take kPanel rows at a time: their products with the solved part of x
// through rows_dot, then the kPanel x kPanel diagonal block.
template <typename T>
DYNAMO_LINALG_INLINE void lu_solve(const T* A, int64_t n, const int64_t* piv, T* b) {
  for (int64_t k = 0; k < n; ++k) {
    if (piv[k] != k) {
      const T tmp = b[k];
      b[k] = b[piv[k]];
      b[piv[k]] = tmp;
    }
  }
  T s[kPanel];
  // L y = P b (L unit lower)
  for (int64_t i0 = 0; i0 < n; i0 += kPanel) {
    const int64_t rb = i0 + kPanel < n ? kPanel : n - i0;
    block_rows_dot(A + i0 * n, n, b, rb, 0, i0, s);
    for (int64_t r = 0; r < rb; ++r) {
      T v = b[i0 + r] - s[r];
      for (int64_t q = 0; q < r; ++q) v -= A[(i0 + r) * n + i0 + q] * b[i0 + q];
      b[i0 + r] = v;
    }
  }
  // U x = y, the last block of rows first
  for (int64_t i0 = (n - 1) / kPanel * kPanel; i0 >= 0; i0 -= kPanel) {
    const int64_t i1 = i0 + kPanel < n ? i0 + kPanel : n, rb = i1 - i0;
    block_rows_dot(A + i0 * n, n, b, rb, i1, n, s);
    for (int64_t r = rb - 1; r >= 0; --r) {
      const int64_t i = i0 + r;
      T v = b[i] - s[r];
      for (int64_t q = i + 1; q < i1; ++q) v -= A[i * n + q] * b[q];
      b[i] = v / A[i * n + i];
    }
  }
}

// Cholesky factorisation A = L L^T of a symmetric positive definite matrix
// (lower triangle used and overwritten). Returns false if A is not positive definite.
//
// Blocked right-looking form, like lu_factor: a panel of kPanel columns is copied,
// transposed, into work (kPanel x n) and factorised there down contiguous columns;
// the trailing lower triangle then gets one rank-kPanel update (rank_update_rows),
// for which the transposed panel is already in place. The unblocked form's short inner
// products (one per element, up to n long) were a third of the damped solver's time at
// D = 256. The strict upper triangle is clobbered.
template <typename T>
DYNAMO_LINALG_INLINE bool cholesky_factor(T* A, int64_t n, T* work) {
  for (int64_t k0 = 0; k0 < n; k0 += kPanel) {
    const int64_t k1 = k0 + kPanel < n ? k0 + kPanel : n;  // panel columns [k0, k1)
    const int64_t kb = k1 - k0;
    // work[t * n + i] = A[i][k0 + t] for rows i >= k0 (row i >= k0 + t is the lower triangle)
    for (int64_t i = k0; i < n; ++i)
      for (int64_t t = 0; t < kb; ++t) work[t * n + i] = A[i * n + k0 + t];
    // the panel, left-looking down its contiguous columns
    for (int64_t t = 0; t < kb; ++t) {
      const int64_t j = k0 + t;
      T* DYNAMO_RESTRICT col = work + t * n;
      for (int64_t s = 0; s < t; ++s) {
        const T* DYNAMO_RESTRICT prev = work + s * n;
        const T l = prev[j];
        for (int64_t i = j; i < n; ++i) col[i] -= prev[i] * l;
      }
      T d = col[j];
      if (!(d > T(0))) return false;
      d = std::sqrt(d);
      col[j] = d;
      const T inv = T(1) / d;
      for (int64_t i = j + 1; i < n; ++i) col[i] *= inv;
    }
    for (int64_t i = k0; i < n; ++i)
      for (int64_t t = 0; t < kb && k0 + t <= i; ++t) A[i * n + k0 + t] = work[t * n + i];
    if (k1 == n) break;
    // A22 -= L21 L21^T with L21^T = work[:, k1:]: the lower triangle, and in each row tile
    // the few columns above the diagonal that complete the tile (never read)
    rank_update_rows<T, false>(A, n, A + k0, n, work, n, kb, k1, n, k1,
                               [n](int64_t i, int64_t rows) { return i + rows < n ? i + rows : n; });
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
