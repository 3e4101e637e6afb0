// CPU backend of meta_rnn_sequence: the shared driver (ATen GEMMs) with an
// at::parallel_for elementwise pass over the cell math of csrc/cell_math.h.
// The inner loops run over contiguous hidden units and are auto-vectorised;
// target_clones builds AVX-512, AVX2 and baseline versions, picked at load time.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/LegacyTypeDispatch.h>

#include <algorithm>

#include "../../cell_math.h"
#include "huge_pages.h"
#include "vectorize.h"
#include "../meta_rnn_sequence.h"


namespace dynamo_ext {
namespace ops {
namespace {

// Elements per parallel task: below this a step runs on one thread.
constexpr int64_t kGrainElements = 16384;
// Fewest rows per row block: below this the per-step GEMMs get too thin.
constexpr int64_t kMinBlockRows = 16;

inline int64_t row_grain(int64_t D) {
  return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(D, 1));
}

// ---- loops over the units of one time step, one per cell and direction ----
// Each array is its own restrict pointer so that the compiler vectorises
// without alias checks; rows are [B, D] blocks, gate blocks are D apart.

// h = tanh(pre + cond)
template <typename T>
DYNAMO_INLINE void tanh_forward_units(const T* __restrict__ pre, const T* __restrict__ cond, T* __restrict__ h,
                                      int64_t n) {
  for (int64_t i = 0; i < n; ++i) h[i] = cell::tanh_cell_forward(pre[i] + cond[i]);
}

// da = (grad_out + grad_rec) (1 - h^2); cond_acc += da
template <typename T>
DYNAMO_INLINE void tanh_backward_units(const T* __restrict__ grad_out, const T* __restrict__ grad_rec,
                                       const T* __restrict__ h, T* __restrict__ grad_pre, T* __restrict__ cond_acc,
                                       int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const T da = cell::tanh_cell_backward(grad_out[i], grad_rec[i], h[i]);
    grad_pre[i] = da;
    cond_acc[i] += da;
  }
}

// gi: W_ih x_t, c: the row's bias cond + b_ih, gh: W_hh z_prev, bhh: b_hh (each r/u/n blocks);
// writes z_t and the workspace (r, u, n, W_hn z_prev + b_hn).
template <typename T>
DYNAMO_INLINE void gru_forward_units(const T* __restrict__ gir, const T* __restrict__ giu,
                                     const T* __restrict__ gin, const T* __restrict__ c_r,
                                     const T* __restrict__ c_u, const T* __restrict__ c_n,
                                     const T* __restrict__ hr, const T* __restrict__ hu, const T* __restrict__ hn,
                                     const T* __restrict__ br, const T* __restrict__ bu,
                                     const T* __restrict__ bn, const T* __restrict__ hp, T* __restrict__ h,
                                     T* __restrict__ wr, T* __restrict__ wu, T* __restrict__ wn,
                                     T* __restrict__ whn, int64_t D) {
  for (int64_t j = 0; j < D; ++j) {
    T r, u, n, z;
    const T ghn = hn[j] + bn[j];
    cell::gru_cell_forward(gir[j] + c_r[j], giu[j] + c_u[j], gin[j] + c_n[j], hr[j] + br[j], hu[j] + bu[j], ghn,
                           hp[j], r, u, n, z);
    wr[j] = r;
    wu[j] = u;
    wn[j] = n;
    whn[j] = ghn;
    h[j] = z;
  }
}

// gr: in dL/dz_t from step t+1, out the direct part dL/dz_t * u of dL/dz_{t-1}
template <typename T>
DYNAMO_INLINE void gru_backward_units(const T* __restrict__ go, T* __restrict__ gr, const T* __restrict__ wr,
                                      const T* __restrict__ wu, const T* __restrict__ wn,
                                      const T* __restrict__ whn, const T* __restrict__ hp, T* __restrict__ gir,
                                      T* __restrict__ giu, T* __restrict__ gin, T* __restrict__ ghr,
                                      T* __restrict__ ghu, T* __restrict__ ghn, T* __restrict__ acc_r, T* __restrict__ acc_u, T* __restrict__ acc_n,
                                      T* __restrict__ acc_hn, int64_t D) {
  for (int64_t j = 0; j < D; ++j) {
    T dxr, dxu, dxn, dhn, dhp;
    cell::gru_cell_backward(go[j], gr[j], wr[j], wu[j], wn[j], whn[j], hp[j], dxr, dxu, dxn, dhn, dhp);
    gir[j] = dxr;
    giu[j] = dxu;
    gin[j] = dxn;
    ghr[j] = dxr;
    ghu[j] = dxu;
    ghn[j] = dhn;
    gr[j] = dhp;
    acc_r[j] += dxr;
    acc_u[j] += dxu;
    acc_n[j] += dxn;
    acc_hn[j] += dhn;
  }
}

// ---- non-template entry points over rows [0, rows), cloned per instruction set ----
#define DYNAMO_DEFINE_LOOPS(T)                                                                                 \
  DYNAMO_CLONES void tanh_forward_loop(const T* pre, const T* cond, T* h, int64_t n) {                         \
    tanh_forward_units(pre, cond, h, n);                                                                       \
  }                                                                                                            \
  DYNAMO_CLONES void tanh_backward_loop(const T* go, const T* gr, const T* h, T* gp, T* acc, int64_t n) {      \
    tanh_backward_units(go, gr, h, gp, acc, n);                                                                \
  }                                                                                                            \
  DYNAMO_CLONES void gru_forward_loop(const T* gi, const T* cond, const T* gh, const T* bhh, const T* hp, T* h, \
                                      T* ws, int64_t rows, int64_t D) {                                        \
    for (int64_t b = 0; b < rows; ++b) {                                                                       \
      const T* x3 = gi + b * 3 * D;                                                                            \
      const T* c = cond + b * 3 * D;                                                                           \
      const T* g = gh + b * 3 * D;                                                                             \
      T* w = ws + b * 4 * D;                                                                                   \
      gru_forward_units(x3, x3 + D, x3 + 2 * D, c, c + D, c + 2 * D, g, g + D, g + 2 * D, bhh, bhh + D,         \
                        bhh + 2 * D, hp + b * D, h + b * D, w, w + D, w + 2 * D, w + 3 * D, D);                \
    }                                                                                                          \
  }                                                                                                            \
  DYNAMO_CLONES void gru_backward_loop(const T* go, T* gr, const T* ws, const T* hp, T* gi, T* gh, T* acc,      \
                                       T* acc_hn, int64_t rows, int64_t D) {                                   \
    for (int64_t b = 0; b < rows; ++b) {                                                                       \
      const T* w = ws + b * 4 * D;                                                                             \
      T* i3 = gi + b * 3 * D;                                                                                  \
      T* h3 = gh + b * 3 * D;                                                                                  \
      T* a3 = acc + b * 3 * D;                                                                                 \
      gru_backward_units(go + b * D, gr + b * D, w, w + D, w + 2 * D, w + 3 * D, hp + b * D, i3, i3 + D,        \
                         i3 + 2 * D, h3, h3 + D, h3 + 2 * D, a3, a3 + D, a3 + 2 * D, acc_hn + b * D, D);       \
    }                                                                                                          \
  }

DYNAMO_DEFINE_LOOPS(float)
DYNAMO_DEFINE_LOOPS(double)
#undef DYNAMO_DEFINE_LOOPS

struct CpuBackend {
  static at::Tensor empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
    return empty_huge_pages(sizes, options);
  }

  // one row block per thread, each running the whole sequence with sequential GEMMs
  static int64_t row_blocks(int64_t B) {
    return std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), B / kMinBlockRows));
  }

  template <class F>
  static void for_each_block(int64_t count, const F& f) {
    if (count == 1) return f(0);
    at::parallel_for(0, count, 1, [&](int64_t i0, int64_t i1) {
      // worker threads do not inherit the caller's below-autograd dispatch state
      const at::AutoDispatchBelowADInplaceOrView guard;
      for (int64_t i = i0; i < i1; ++i) f(i);
    });
  }

  static void tanh_forward(const at::Tensor& pre, const at::Tensor& cond, at::Tensor& h) {
    const int64_t B = h.size(0), D = h.size(1);
    AT_DISPATCH_FLOATING_TYPES(pre.scalar_type(), "meta_rnn_sequence_tanh_forward_cpu", [&] {
      const scalar_t* a = pre.const_data_ptr<scalar_t>();
      const scalar_t* c = cond.const_data_ptr<scalar_t>();
      scalar_t* out = h.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, B, row_grain(D), [&](int64_t b0, int64_t b1) {
        tanh_forward_loop(a + b0 * D, c + b0 * D, out + b0 * D, (b1 - b0) * D);
      });
    });
  }

  static void tanh_backward(const at::Tensor& grad_out, const at::Tensor& grad_rec, const at::Tensor& h,
                            at::Tensor& grad_pre, at::Tensor& cond_acc) {
    const int64_t B = h.size(0), D = h.size(1);
    AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "meta_rnn_sequence_tanh_backward_cpu", [&] {
      const scalar_t* go = grad_out.const_data_ptr<scalar_t>();
      const scalar_t* gr = grad_rec.const_data_ptr<scalar_t>();
      const scalar_t* z = h.const_data_ptr<scalar_t>();
      scalar_t* out = grad_pre.mutable_data_ptr<scalar_t>();
      scalar_t* acc = cond_acc.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, B, row_grain(D), [&](int64_t b0, int64_t b1) {
        tanh_backward_loop(go + b0 * D, gr + b0 * D, z + b0 * D, out + b0 * D, acc + b0 * D, (b1 - b0) * D);
      });
    });
  }

  static void gru_forward(const at::Tensor& gi, const at::Tensor& row_bias, const at::Tensor& gh,
                          const at::Tensor& b_hh, const at::Tensor& h_prev, at::Tensor& h, at::Tensor& ws) {
    const int64_t B = h.size(0), D = h.size(1);
    AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "meta_rnn_sequence_gru_forward_cpu", [&] {
      const scalar_t* x = gi.const_data_ptr<scalar_t>();
      scalar_t* w = ws.mutable_data_ptr<scalar_t>();
      const scalar_t* c = row_bias.const_data_ptr<scalar_t>();
      const scalar_t* g = gh.const_data_ptr<scalar_t>();
      const scalar_t* bhh = b_hh.const_data_ptr<scalar_t>();
      const scalar_t* hp = h_prev.const_data_ptr<scalar_t>();
      scalar_t* ho = h.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, B, row_grain(4 * D), [&](int64_t b0, int64_t b1) {
        gru_forward_loop(x + b0 * 3 * D, c + b0 * 3 * D, g + b0 * 3 * D, bhh, hp + b0 * D, ho + b0 * D,
                         w + b0 * 4 * D, b1 - b0, D);
      });
    });
  }

  static void gru_backward(const at::Tensor& grad_out, at::Tensor& grad_rec, const at::Tensor& ws,
                           const at::Tensor& h_prev, at::Tensor& d_gi, at::Tensor& d_gh, at::Tensor& cond_acc,
                           at::Tensor& hn_acc) {
    const int64_t B = h_prev.size(0), D = h_prev.size(1);
    AT_DISPATCH_FLOATING_TYPES(h_prev.scalar_type(), "meta_rnn_sequence_gru_backward_cpu", [&] {
      const scalar_t* go = grad_out.const_data_ptr<scalar_t>();
      scalar_t* gr = grad_rec.mutable_data_ptr<scalar_t>();
      const scalar_t* w = ws.const_data_ptr<scalar_t>();
      const scalar_t* hp = h_prev.const_data_ptr<scalar_t>();
      scalar_t* gi = d_gi.mutable_data_ptr<scalar_t>();
      scalar_t* gh = d_gh.mutable_data_ptr<scalar_t>();
      scalar_t* acc = cond_acc.mutable_data_ptr<scalar_t>();
      scalar_t* acc_hn = hn_acc.mutable_data_ptr<scalar_t>();
      at::parallel_for(0, B, row_grain(8 * D), [&](int64_t b0, int64_t b1) {
        gru_backward_loop(go + b0 * D, gr + b0 * D, w + b0 * 4 * D, hp + b0 * D, gi + b0 * 3 * D, gh + b0 * 3 * D,
                          acc + b0 * 3 * D, acc_hn + b0 * D, b1 - b0, D);
      });
    });
  }
};

ForwardResult forward_cpu(const at::Tensor& x, const at::Tensor& h0, const at::Tensor& cond,
                          const at::Tensor& w_ih, const at::Tensor& w_hh, const at::Tensor& b_ih,
                          const at::Tensor& b_hh, c10::string_view cell,
                          bool save_workspace) {
  return sequence_forward<CpuBackend>(x, h0, cond, w_ih, w_hh, b_ih, b_hh, cell, save_workspace);
}

BackwardResult backward_cpu(const at::Tensor& grad_h, const at::Tensor& x, const at::Tensor& h0,
                            const at::Tensor& h_all, const at::Tensor& workspace,
                            const at::Tensor& w_ih, const at::Tensor& w_hh, c10::string_view cell, bool need_grad_x) {
  return sequence_backward<CpuBackend>(grad_h, x, h0, h_all, workspace, w_ih, w_hh, cell, need_grad_x);
}

}  // namespace

TORCH_LIBRARY_IMPL(dynamo_ext, CPU, m) {
  m.impl("meta_rnn_sequence", &forward_cpu);
  m.impl("meta_rnn_sequence_backward", &backward_cpu);
}

}  // namespace ops
}  // namespace dynamo_ext
