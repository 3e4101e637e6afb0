// CPU backend of hidden_map_loss: every product is a small GEMM of a row's states [T, D] with its
// map's block of the table, done by one register-blocked panel (kPanelRows rows x kPanelCols columns of
// the product held in vector registers over the whole inner dimension), the work split in units of
// kPanelCols output columns (forward: one row's map rows; backward: one row's D columns of grad_z, or
// a block of one map's rows of grad_table over all the rows that share it) spread over threads.
// The loss is summed per unit in float64 and the units in order: the same on any thread count.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "../hidden_map_loss.h"
#include "vectorize.h"

namespace dynamo_ext {
namespace ops {
namespace {

constexpr int64_t kPanelCols = 16;
constexpr int64_t kPanelRows = 4;

// C[m * cs + j] (+)= sum_k L[m * lm + k * lk] * R[k * rs + j], for m < M and j < n <= kPanelCols.
template <typename T>
DYNAMO_INLINE void panel(int64_t M, int64_t K, const T* L, int64_t lm, int64_t lk, const T* R, int64_t rs, T* C,
                         int64_t cs, int64_t n, bool accumulate) {
  int64_t m = 0;
  if (n == kPanelCols) {
    for (; m + kPanelRows <= M; m += kPanelRows) {
      T acc[kPanelRows][kPanelCols] = {};
      for (int64_t k = 0; k < K; ++k) {
        const T* r = R + k * rs;
#pragma GCC unroll 4
        for (int64_t u = 0; u < kPanelRows; ++u) {
          const T l = L[(m + u) * lm + k * lk];
#pragma omp simd
          for (int64_t j = 0; j < kPanelCols; ++j) acc[u][j] += l * r[j];
        }
      }
      for (int64_t u = 0; u < kPanelRows; ++u) {
        T* c = C + (m + u) * cs;
        for (int64_t j = 0; j < kPanelCols; ++j) c[j] = accumulate ? c[j] + acc[u][j] : acc[u][j];
      }
    }
  }
  for (; m < M; ++m) {  // the rows left over, and panels narrower than kPanelCols
    T acc[kPanelCols] = {};
    for (int64_t k = 0; k < K; ++k) {
      const T l = L[m * lm + k * lk];
      const T* r = R + k * rs;
      for (int64_t j = 0; j < n; ++j) acc[j] += l * r[j];
    }
    T* c = C + m * cs;
    for (int64_t j = 0; j < n; ++j) c[j] = accumulate ? c[j] + acc[j] : acc[j];
  }
}

// one copy per instruction set (vectorize.h); templates cannot carry target_clones
#define DYNAMO_PANEL(T)                                                                                        \
  DYNAMO_CLONES void panel_##T(int64_t M, int64_t K, const T* L, int64_t lm, int64_t lk, const T* R, int64_t rs, \
                               T* C, int64_t cs, int64_t n, bool accumulate) {                                  \
    panel<T>(M, K, L, lm, lk, R, rs, C, cs, n, accumulate);                                                     \
  }
DYNAMO_PANEL(float)
DYNAMO_PANEL(double)
#undef DYNAMO_PANEL
void run_panel(int64_t M, int64_t K, const float* L, int64_t lm, int64_t lk, const float* R, int64_t rs, float* C,
               int64_t cs, int64_t n, bool acc) {
  panel_float(M, K, L, lm, lk, R, rs, C, cs, n, acc);
}
void run_panel(int64_t M, int64_t K, const double* L, int64_t lm, int64_t lk, const double* R, int64_t rs, double* C,
               int64_t cs, int64_t n, bool acc) {
  panel_double(M, K, L, lm, lk, R, rs, C, cs, n, acc);
}

int64_t blocks_of(int64_t n) { return (n + kPanelCols - 1) / kPanelCols; }

// Rows grouped by map (equal map_row), maps in increasing map_row; checks that each group's rows
// share one width, that the maps lie in the table and do not overlap, and (when given) the targets' range.
struct Groups {
  std::vector<int64_t> rows;   // row indices, grouped
  std::vector<int64_t> first;  // group g: rows[first[g] .. first[g + 1])
};

Groups group_rows(const int64_t* map_row, const int64_t* width, int64_t B, int64_t K) {
  Groups g;
  g.rows.resize(B);
  std::iota(g.rows.begin(), g.rows.end(), 0);
  std::stable_sort(g.rows.begin(), g.rows.end(), [&](int64_t a, int64_t b) { return map_row[a] < map_row[b]; });
  int64_t end_of_last = 0;
  for (int64_t i = 0; i < B; ++i) {
    const int64_t b = g.rows[i];
    TORCH_CHECK(width[b] >= 1, "hidden_map_loss: argument 'width' must be >= 1, got ", width[b], " at row ", b);
    TORCH_CHECK(map_row[b] >= 0 && map_row[b] + width[b] <= K, "hidden_map_loss: argument 'map_row' must keep rows ",
                "map_row .. map_row + width - 1 inside the table's ", K, " rows, got ", map_row[b], " (width ",
                width[b], ") at row ", b);
    if (i > 0 && map_row[b] == map_row[g.rows[i - 1]]) {
      TORCH_CHECK(width[b] == width[g.rows[i - 1]], "hidden_map_loss: rows sharing map_row ", map_row[b],
                  " must share one width, got ", width[g.rows[i - 1]], " and ", width[b], " (rows ", g.rows[i - 1],
                  " and ", b, ")");
      continue;
    }
    TORCH_CHECK(map_row[b] >= end_of_last, "hidden_map_loss: the maps at map_row ", map_row[g.rows[i - 1]], " and ",
                map_row[b], " overlap (argument 'width' ", width[g.rows[i - 1]], ")");
    g.first.push_back(i);
    end_of_last = map_row[b] + width[b];
  }
  g.first.push_back(B);
  return g;
}

std::tuple<at::Tensor, at::Tensor> hidden_map_loss_cpu(const at::Tensor& z, const at::Tensor& table,
                                                       const at::Tensor& map_row, const at::Tensor& width,
                                                       const at::Tensor& targets, const at::Tensor& target_start) {
  check_hidden_map_loss_inputs(z, table, map_row, width, targets, target_start);
  const int64_t B = z.size(0), T = z.size(1), D = z.size(2), K = table.size(0), L = targets.size(0);
  const at::Tensor map_row_c = map_row.contiguous(), width_c = width.contiguous(), start_c = target_start.contiguous();
  const int64_t* mr = map_row_c.data_ptr<int64_t>();
  const int64_t* wd = width_c.data_ptr<int64_t>();
  const int64_t* ts = start_c.data_ptr<int64_t>();
  group_rows(mr, wd, B, K);  // checks only
  for (int64_t b = 0; b < B; ++b)
    TORCH_CHECK(ts[b] >= 0 && ts[b] + T * wd[b] <= L, "hidden_map_loss: argument 'target_start' must keep row ", b,
                "'s T x width = ", T * wd[b], " targets inside the ", L, " of 'targets', got ", ts[b]);
  const at::Tensor offsets = residual_offsets(width_c, T);
  const int64_t* off = offsets.data_ptr<int64_t>();
  const int64_t R = B ? off[B - 1] + T * wd[B - 1] : 0;
  at::Tensor residual = at::empty({R}, z.options());
  // units: (row b, block of kPanelCols of its map's rows)
  std::vector<int64_t> unit_row, unit_block;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t k = 0; k < blocks_of(wd[b]); ++k) unit_row.push_back(b), unit_block.push_back(k);
  const int64_t U = static_cast<int64_t>(unit_row.size());
  std::vector<double> partial(U, 0.0);
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "hidden_map_loss_cpu", [&] {
    const scalar_t* zp = z.data_ptr<scalar_t>();
    const scalar_t* tab = table.data_ptr<scalar_t>();
    const scalar_t* tgt = targets.data_ptr<scalar_t>();
    scalar_t* res = residual.data_ptr<scalar_t>();
    at::parallel_for(0, U, 1, [&](int64_t u0, int64_t u1) {
      // the block's map rows transposed [D, kPanelCols] (zero columns past the map's last row), and
      // its product with z_b [T, kPanelCols]: every panel full width
      std::vector<scalar_t> at_block(D * kPanelCols), product(T * kPanelCols);
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t b = unit_row[u], d = wd[b], i0 = unit_block[u] * kPanelCols;
        const int64_t n = std::min(kPanelCols, d - i0);
        const scalar_t* a = tab + (mr[b] + i0) * (D + 1);
        std::fill(at_block.begin(), at_block.end(), scalar_t(0));
        for (int64_t j = 0; j < n; ++j)
          for (int64_t k = 0; k < D; ++k) at_block[k * kPanelCols + j] = a[j * (D + 1) + k];
        run_panel(T, D, zp + b * T * D, D, 1, at_block.data(), kPanelCols, product.data(), kPanelCols, kPanelCols,
                  false);
        scalar_t* r = res + off[b] + i0;
        const scalar_t* y = tgt + ts[b] + i0;
        double sum = 0.0;
        for (int64_t t = 0; t < T; ++t)
          for (int64_t j = 0; j < n; ++j) {
            const scalar_t v = product[t * kPanelCols + j] + a[j * (D + 1) + D] - y[t * d + j];
            r[t * d + j] = v;
            sum += static_cast<double>(v) * static_cast<double>(v);
          }
        partial[u] = sum / static_cast<double>(d);
      }
    });
  });
  const double loss = std::accumulate(partial.begin(), partial.end(), 0.0);
  return {at::scalar_tensor(loss, z.options()), residual};
}

std::tuple<at::Tensor, at::Tensor> hidden_map_loss_backward_cpu(const at::Tensor& grad, const at::Tensor& z,
                                                                const at::Tensor& table, const at::Tensor& map_row,
                                                                const at::Tensor& width, const at::Tensor& residual,
                                                                bool need_grad_z) {
  check_hidden_map_loss_backward_inputs(grad, z, table, map_row, width, residual);
  const int64_t B = z.size(0), T = z.size(1), D = z.size(2), K = table.size(0);
  const at::Tensor map_row_c = map_row.contiguous(), width_c = width.contiguous();
  const int64_t* mr = map_row_c.data_ptr<int64_t>();
  const int64_t* wd = width_c.data_ptr<int64_t>();
  const Groups groups = group_rows(mr, wd, B, K);
  const at::Tensor offsets = residual_offsets(width_c, T);
  const int64_t* off = offsets.data_ptr<int64_t>();
  const int64_t R = B ? off[B - 1] + T * wd[B - 1] : 0;
  TORCH_CHECK(residual.size(0) == R, "hidden_map_loss_backward: argument 'residual' must have ", R,
              " elements (T x the sum of width), got ", residual.size(0));
  at::Tensor grad_z = need_grad_z ? at::empty_like(z) : at::empty({0}, z.options());
  at::Tensor grad_table = at::empty_like(table);
  const int64_t G = static_cast<int64_t>(groups.first.size()) - 1;
  // units of grad_table: (group, block of kPanelCols of its map's rows)
  std::vector<int64_t> unit_group, unit_block;
  for (int64_t g = 0; g < G; ++g)
    for (int64_t k = 0; k < blocks_of(wd[groups.rows[groups.first[g]]]); ++k)
      unit_group.push_back(g), unit_block.push_back(k);
  const int64_t U = static_cast<int64_t>(unit_group.size()), DB = blocks_of(D);
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "hidden_map_loss_backward_cpu", [&] {
    const scalar_t* zp = z.data_ptr<scalar_t>();
    const scalar_t* tab = table.data_ptr<scalar_t>();
    const scalar_t* res = residual.data_ptr<scalar_t>();
    const double g0 = grad.item<double>();
    scalar_t* gt = grad_table.data_ptr<scalar_t>();
    // rows of the table no map uses: zero
    std::vector<char> used(K, 0);
    for (int64_t g = 0; g < G; ++g) {
      const int64_t b = groups.rows[groups.first[g]];
      std::fill(used.begin() + mr[b], used.begin() + mr[b] + wd[b], 1);
    }
    for (int64_t i = 0; i < K; ++i)
      if (!used[i]) std::fill(gt + i * (D + 1), gt + (i + 1) * (D + 1), scalar_t(0));
    if (need_grad_z) {
      scalar_t* gz = grad_z.data_ptr<scalar_t>();
      // grad_z[b, t, j0:j0+n] = (2 g / d_b) sum_i r_b[t, i] A[i, j0:j0+n]; units (row, block of D)
      at::parallel_for(0, B * DB, 1, [&](int64_t u0, int64_t u1) {
        std::vector<scalar_t> a_block;
        for (int64_t u = u0; u < u1; ++u) {
          const int64_t b = u / DB, d = wd[b], j0 = (u % DB) * kPanelCols, n = std::min(kPanelCols, D - j0);
          a_block.resize(d * kPanelCols);  // [d, kPanelCols]: columns j0.. of the map's rows
          const scalar_t* a = tab + mr[b] * (D + 1) + j0;
          for (int64_t i = 0; i < d; ++i) std::copy(a + i * (D + 1), a + i * (D + 1) + n, &a_block[i * kPanelCols]);
          scalar_t* out = gz + b * T * D + j0;
          run_panel(T, d, res + off[b], d, 1, a_block.data(), kPanelCols, out, D, n, false);
          const auto s = static_cast<scalar_t>(2.0 * g0 / static_cast<double>(d));
          for (int64_t t = 0; t < T; ++t)
            for (int64_t j = 0; j < n; ++j) out[t * D + j] *= s;
        }
      });
    }
    // grad_table[map_row + i, :D] = (2 g / d) sum over the group's rows b and t of r_b[t, i] z_b[t, :];
    // column D: the same sum of r_b[t, i]
    at::parallel_for(0, U, 1, [&](int64_t u0, int64_t u1) {
      std::vector<scalar_t> acc(kPanelCols * D);
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t g = unit_group[u], first = groups.rows[groups.first[g]], d = wd[first];
        const int64_t i0 = unit_block[u] * kPanelCols, n = std::min(kPanelCols, d - i0);
        std::fill(acc.begin(), acc.end(), scalar_t(0));
        scalar_t bias[kPanelCols] = {};
        for (int64_t p = groups.first[g]; p < groups.first[g + 1]; ++p) {
          const int64_t b = groups.rows[p];
          const scalar_t* r = res + off[b] + i0;
          for (int64_t jb = 0; jb < DB; ++jb) {
            const int64_t j0 = jb * kPanelCols;
            run_panel(n, T, r, 1, d, zp + b * T * D + j0, D, acc.data() + j0, D, std::min(kPanelCols, D - j0), true);
          }
          for (int64_t t = 0; t < T; ++t)
            for (int64_t i = 0; i < n; ++i) bias[i] += r[t * d + i];
        }
        const auto s = static_cast<scalar_t>(2.0 * g0 / static_cast<double>(d));
        for (int64_t i = 0; i < n; ++i) {
          scalar_t* row = gt + (mr[first] + i0 + i) * (D + 1);
          for (int64_t j = 0; j < D; ++j) row[j] = s * acc[i * D + j];
          row[D] = s * bias[i];
        }
      }
    });
  });
  return {grad_z, grad_table};
}

}  // namespace

TORCH_LIBRARY_IMPL(dynamo_ext, CPU, m) {
  m.impl("hidden_map_loss", &hidden_map_loss_cpu);
  m.impl("hidden_map_loss_backward", &hidden_map_loss_backward_cpu);
}

}  // namespace ops
}  // namespace dynamo_ext
