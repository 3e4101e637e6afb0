// The one TORCH_LIBRARY block of the dynamo_ext namespace: every op's schema.
// Backend kernels register themselves in csrc/ops/{cpu,cuda} with TORCH_LIBRARY_IMPL.
#include <torch/library.h>

#include "hidden_map_loss.h"
#include "meta_rnn_sequence.h"
#include "newton_fixed_points.h"
#include "row_adam.h"

TORCH_LIBRARY(dynamo_ext, m) {
  dynamo_ext::ops::define_hidden_map_loss(m);
  dynamo_ext::ops::define_meta_rnn_sequence(m);
  dynamo_ext::ops::define_newton_fixed_points(m);
  dynamo_ext::ops::define_row_adam(m);
}
