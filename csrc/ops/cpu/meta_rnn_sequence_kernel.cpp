// CPU backend of meta_rnn_sequence: the shared driver (ATen GEMMs) with an
// at::parallel_for elementwise pass over the cell math of csrc/cell_math.h.
// The inner loops run over contiguous hidden units and are auto-vectorised;
// target_clones builds AVX-512, AVX2 and baseline versions, picked at load time.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>

#include "../../cell_math.h"
#include "../meta_rnn_sequence.h"

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define DYNAMO_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define DYNAMO_CLONES
#endif
// The row loops must be inlined into each clone to be compiled for its instruction set.
#define DYNAMO_INLINE inline __attribute__((always_inline))

namespace dynamo_ext {
namespace ops {
namespace {

// Elements per parallel task: below this a step runs on one thread.
constexpr int64_t kGrainElements = 16384;

inline int64_t row_grain(int64_t D) {
  return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(D, 1));
}

// ---- loops over rows [b0, b1) of one time step, one per cell and direction ----

template <typename T>
DYNAMO_INLINE void tanh_forward_rows(const T* __restrict__ pre, T* __restrict__ h, int64_t n) {
  for (int64_t i = 0; i < n; ++i) h[i] = cell::tanh_cell_forward(pre[i]);
}

template <typename T>
DYNAMO_INLINE void tanh_backward_rows(const T* __restrict__ grad_out, const T* __restrict__ grad_rec,
                               const T* __restrict__ h, T* __restrict__ grad_pre, int64_t n) {
  for (int64_t i = 0; i < n; ++i) grad_pre[i] = cell::tanh_cell_backward(grad_out[i], grad_rec[i], h[i]);
}

// One row of the GRU forward over D contiguous units; every gate block is its
// own restrict pointer so that the compiler can vectorise without alias checks.
template <typename T>
DYNAMO_INLINE void gru_forward_units(const T* __restrict__ xr, const T* __restrict__ xu, const T* __restrict__ xn,
                              const T* __restrict__ hr, const T* __restrict__ hu, const T* __restrict__ hn,
                              const T* __restrict__ hp, T* __restrict__ h, T* __restrict__ wr, T* __restrict__ wu,
                              T* __restrict__ wn, T* __restrict__ whn, int64_t D) {
  for (int64_t j = 0; j < D; ++j) {
    T r, u, n, z;
    cell::gru_cell_forward(xr[j], xu[j], xn[j], hr[j], hu[j], hn[j], hp[j], r, u, n, z);
    wr[j] = r;
    wu[j] = u;
    wn[j] = n;
    whn[j] = hn[j];
    h[j] = z;
  }
}

// pre [rows, 3D], gh [rows, 3D], h_prev/h [rows, D], ws [rows, 4D]
template <typename T>
DYNAMO_INLINE void gru_forward_rows(const T* pre, const T* gh, const T* h_prev, T* h, T* ws, int64_t rows, int64_t D) {
  for (int64_t b = 0; b < rows; ++b) {
    const T* x = pre + b * 3 * D;
    const T* g = gh + b * 3 * D;
    T* w = ws + b * 4 * D;
    gru_forward_units(x, x + D, x + 2 * D, g, g + D, g + 2 * D, h_prev + b * D, h + b * D, w, w + D, w + 2 * D,
                      w + 3 * D, D);
  }
}

template <typename T>
DYNAMO_INLINE void gru_backward_units(const T* __restrict__ go, const T* __restrict__ gr, const T* __restrict__ wr,
                               const T* __restrict__ wu, const T* __restrict__ wn, const T* __restrict__ whn,
                               const T* __restrict__ hp, T* __restrict__ gir, T* __restrict__ giu,
                               T* __restrict__ gin, T* __restrict__ ghr, T* __restrict__ ghu, T* __restrict__ ghn,
                               T* __restrict__ dd, int64_t D) {
  for (int64_t j = 0; j < D; ++j) {
    T dxr, dxu, dxn, dhn, dhp;
    cell::gru_cell_backward(go[j], gr[j], wr[j], wu[j], wn[j], whn[j], hp[j], dxr, dxu, dxn, dhn, dhp);
    gir[j] = dxr;
    giu[j] = dxu;
    gin[j] = dxn;
    ghr[j] = dxr;
    ghu[j] = dxu;
    ghn[j] = dhn;
    dd[j] = dhp;
  }
}

template <typename T>
DYNAMO_INLINE void gru_backward_rows(const T* grad_out, const T* grad_rec, const T* ws, const T* h_prev, T* d_gi, T* d_gh,
                              T* direct, int64_t rows, int64_t D) {
  for (int64_t b = 0; b < rows; ++b) {
    const T* w = ws + b * 4 * D;
    T* gi = d_gi + b * 3 * D;
    T* gh = d_gh + b * 3 * D;
    gru_backward_units(grad_out + b * D, grad_rec + b * D, w, w + D, w + 2 * D, w + 3 * D, h_prev + b * D, gi,
                       gi + D, gi + 2 * D, gh, gh + D, gh + 2 * D, direct + b * D, D);
  }
}

// ---- non-template entry points, cloned per instruction set ----
#define DYNAMO_DEFINE_LOOPS(T)                                                                                  \
  DYNAMO_CLONES void tanh_forward_loop(const T* pre, T* h, int64_t n) { tanh_forward_rows(pre, h, n); }       \
  DYNAMO_CLONES void tanh_backward_loop(const T* go, const T* gr, const T* h, T* gp, int64_t n) {             \
    tanh_backward_rows(go, gr, h, gp, n);                                                                     \
  }                                                                                                           \
  DYNAMO_CLONES void gru_forward_loop(const T* pre, const T* gh, const T* hp, T* h, T* ws, int64_t rows,       \
                                      int64_t D) {                                                            \
    gru_forward_rows(pre, gh, hp, h, ws, rows, D);                                                            \
  }                                                                                                           \
  DYNAMO_CLONES void gru_backward_loop(const T* go, const T* gr, const T* ws, const T* hp, T* gi, T* gh,       \
                                       T* dd, int64_t rows, int64_t D) {                                      \
    gru_backward_rows(go, gr, ws, hp, gi, gh, dd, rows, D);                                                   \
  }

DYNAMO_DEFINE_LOOPS(float)
DYNAMO_DEFINE_LOOPS(double)
#undef DYNAMO_DEFINE_LOOPS

struct CpuPointwise {
  static void tanh_forward(const at::Tensor& pre, at::Tensor& h) {
    const int64_t B = h.size(0), D = h.size(1);
    AT_DISPATCH_FLOATING_TYPES(pre.scalar_type(), "meta_rnn_sequence_tanh_forward_cpu", [&] {
      const scalar_t* a = pre.const_data_ptr<scalar_t>();
      scalar_t* out = h.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, B, row_grain(D), [&](int64_t b0, int64_t b1) {
        tanh_forward_loop(a + b0 * D, out + b0 * D, (b1 - b0) * D);
      });
    });
  }

  static void tanh_backward(const at::Tensor& grad_out, const at::Tensor& grad_rec, const at::Tensor& h,
                            at::Tensor& grad_pre) {
    const int64_t B = h.size(0), D = h.size(1);
    AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "meta_rnn_sequence_tanh_backward_cpu", [&] {
      const scalar_t* go = grad_out.const_data_ptr<scalar_t>();
      const scalar_t* gr = grad_rec.const_data_ptr<scalar_t>();
      const scalar_t* z = h.const_data_ptr<scalar_t>();
      scalar_t* out = grad_pre.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, B, row_grain(D), [&](int64_t b0, int64_t b1) {
        tanh_backward_loop(go + b0 * D, gr + b0 * D, z + b0 * D, out + b0 * D, (b1 - b0) * D);
      });
    });
  }

  static void gru_forward(const at::Tensor& pre, const at::Tensor& gh, const at::Tensor& h_prev, at::Tensor& h,
                          at::Tensor& ws) {
    const int64_t B = h.size(0), D = h.size(1);
    AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "meta_rnn_sequence_gru_forward_cpu", [&] {
      const scalar_t* p = pre.const_data_ptr<scalar_t>();
      const scalar_t* g = gh.const_data_ptr<scalar_t>();
      const scalar_t* hp = h_prev.const_data_ptr<scalar_t>();
      scalar_t* ho = h.mutable_data_ptr<scalar_t>();
      scalar_t* w = ws.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, B, row_grain(4 * D), [&](int64_t b0, int64_t b1) {
        gru_forward_loop(p + b0 * 3 * D, g + b0 * 3 * D, hp + b0 * D, ho + b0 * D, w + b0 * 4 * D, b1 - b0, D);
      });
    });
  }

  static void gru_backward(const at::Tensor& grad_out, const at::Tensor& grad_rec, const at::Tensor& ws,
                           const at::Tensor& h_prev, at::Tensor& d_gi, at::Tensor& d_gh, at::Tensor& direct) {
    const int64_t B = h_prev.size(0), D = h_prev.size(1);
    AT_DISPATCH_FLOATING_TYPES(h_prev.scalar_type(), "meta_rnn_sequence_gru_backward_cpu", [&] {
      const scalar_t* go = grad_out.const_data_ptr<scalar_t>();
      const scalar_t* gr = grad_rec.const_data_ptr<scalar_t>();
      const scalar_t* w = ws.const_data_ptr<scalar_t>();
      const scalar_t* hp = h_prev.const_data_ptr<scalar_t>();
      scalar_t* gi = d_gi.mutable_data_ptr<scalar_t>();
      scalar_t* gh = d_gh.mutable_data_ptr<scalar_t>();
      scalar_t* dd = direct.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, B, row_grain(8 * D), [&](int64_t b0, int64_t b1) {
        gru_backward_loop(go + b0 * D, gr + b0 * D, w + b0 * 4 * D, hp + b0 * D, gi + b0 * 3 * D, gh + b0 * 3 * D,
                          dd + b0 * D, b1 - b0, D);
      });
    });
  }
};

ForwardResult forward_cpu(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& cond,
                          const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
                          const at::Tensor& b_hh, c10::string_view cell) {
  return sequence_forward<CpuPointwise>(x, h0, cond, w_ih, w_hh, b_ih, b_hh, cell);
}

BackwardResult backward_cpu(const at::Tensor& grad_h, const at::Tensor& x, const at::Tensor& h0,
                            const at::Tensor& h_all, const at::Tensor& workspace,
                            const at::Tensor& w_ih, const at::Tensor& w_hh, c10::string_view cell) {
  return sequence_backward<CpuPointwise>(grad_h, x, h0, h_all, workspace, w_ih, w_hh, cell);
}

}  // namespace

TORCH_LIBRARY_IMPL(dynamo_ext, CPU, m) {
  m.impl("meta_rnn_sequence", &forward_cpu);
  m.impl("meta_rnn_sequence_backward", &backward_cpu);
}

}  // namespace ops
}  // namespace dynamo_ext
