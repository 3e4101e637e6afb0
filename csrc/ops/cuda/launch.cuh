// One kernel launch on the current CUDA stream, checked: the Launch policy of the device
// drivers (meta_rnn_sequence_device.cuh, newton_fixed_points_device.cuh); the host emulation
// under tests/cuda_emulation has its own with the same signature.
#pragma once

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>

namespace dynamo_ext {
namespace ops {

struct CudaLaunch {
  // kernel<<<blocks, threads, shared_bytes, current stream>>>(args...); shared_bytes > 0 is
  // dynamic shared memory, raised above the default limit where the kernel needs it.
  template <class... Params, class... Args>
  static void run(void (*kernel)(Params...), unsigned int blocks, int threads, size_t shared_bytes, Args... args) {
    if (shared_bytes > 0)
      C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                          static_cast<int>(shared_bytes)));
    kernel<<<blocks, threads, shared_bytes, at::cuda::getCurrentCUDAStream()>>>(static_cast<Params>(args)...);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
};

}  // namespace ops
}  // namespace dynamo_ext
