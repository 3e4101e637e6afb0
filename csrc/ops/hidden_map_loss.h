// hidden_map_loss: the hidden-state term of the DYNAMO loss with every row's map gathered from one
// table (docs/method.md, "The loss"; dynamo_ext.meta.hidden_loss, dynamo_ext.meta.packed).
//
// Schemas (registered in registration.cpp):
//   hidden_map_loss(Tensor z, Tensor table, Tensor map_row, Tensor width, Tensor targets,
//                   Tensor target_start) -> (Tensor loss, Tensor residual)
//   hidden_map_loss_backward(Tensor grad, Tensor z, Tensor table, Tensor map_row, Tensor width,
//                            Tensor residual, bool need_grad_z) -> (Tensor grad_z, Tensor grad_table)
//
// z [B, T, D] meta states (float32/float64, contiguous); table [K, D + 1]: row map_row[b] + i holds
// row i of row b's map A (its first D columns) and c_i (its last); width [B] the map's height d_b;
// targets [L] (1-D, contiguous), row b's standardised base hidden states at
// targets[target_start[b] + t d_b + i]. With r_b[t, i] = (A z_b[t] + c)_i - target:
//   loss = sum_b sum_{t,i} r_b[t, i]^2 / d_b   (0-dim)
//   residual [sum_b T d_b]: r_b row-major [T, d_b] at offset T (d_0 + ... + d_{b-1}), for the backward.
// Rows whose map_row is equal share one map (and its width); the maps of different map_row values do
// not overlap. The backward returns grad * d loss / d z (or an empty tensor) and grad * d loss / d table
// (zero on rows no map uses). The targets get no gradient.
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

namespace dynamo_ext {
namespace ops {

// Shapes, dtypes and devices of the forward's arguments (both backends).
void check_hidden_map_loss_inputs(const at::Tensor& z, const at::Tensor& table, const at::Tensor& map_row,
                                  const at::Tensor& width, const at::Tensor& targets, const at::Tensor& target_start);

// The backward's (both backends); R = the residual's expected length is checked where known.
void check_hidden_map_loss_backward_inputs(const at::Tensor& grad, const at::Tensor& z, const at::Tensor& table,
                                           const at::Tensor& map_row, const at::Tensor& width,
                                           const at::Tensor& residual);

// Offsets of the rows' residual blocks: T * (exclusive cumulative sum of width), int64 [B], on width's device.
at::Tensor residual_offsets(const at::Tensor& width, int64_t T);

void define_hidden_map_loss(torch::Library& m);

}  // namespace ops
}  // namespace dynamo_ext
