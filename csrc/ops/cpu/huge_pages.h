// Large CPU buffers on transparent huge pages, recycled between calls.
//
// glibc serves an allocation above its mmap threshold (at most 32 MiB) with a
// fresh mmap and returns it with munmap, so a [T, B, 4D] workspace is faulted
// in page by page, and zeroed by the kernel, on every call: at configuration M
// of the benchmark that was a quarter of the GRU forward+backward time (perf:
// page faults, cgroup charging, page-table locks, clear_page). Buffers of
// 2 MiB or more come from here instead: 2 MiB aligned and marked
// MADV_HUGEPAGE (512 times fewer faults where the kernel allows huge pages),
// and, when their tensor dies, kept for the next call of a similar size, as
// PyTorch's CUDA caching allocator does, up to a total of
// DYNAMO_EXT_CPU_BUFFER_CACHE_MB (default 1024; 0 frees them at once).
// The result is an ordinary tensor with uninitialised contents.
#pragma once

#include <ATen/ATen.h>

namespace dynamo_ext {
namespace ops {

at::Tensor empty_huge_pages(at::IntArrayRef sizes, const at::TensorOptions& options);

}  // namespace ops
}  // namespace dynamo_ext
