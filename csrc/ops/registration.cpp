// The one TORCH_LIBRARY block of the dynamo_ext namespace: every op's schema.
// Backend kernels register themselves in csrc/ops/{cpu,cuda} with TORCH_LIBRARY_IMPL.
#include <torch/library.h>

#include "meta_rnn_sequence.h"

TORCH_LIBRARY(dynamo_ext, m) {
  dynamo_ext::ops::define_meta_rnn_sequence(m);
}
