// Host emulation of the CUDA execution model, for running dynamo_ext's device code
// (csrc/ops/cuda/*_device.cuh) on a machine without a GPU (tests/test_cuda_emulation.py).
//
// What it does: a launch runs the grid's blocks one after another; within a block every
// thread is a fiber of its own (its own stack, threadIdx, registers), so code written for
// a block's threads runs as written. __syncthreads() is a real barrier: a fiber that
// reaches it waits until every live thread of its block has. __shfl_down_sync is a real
// warp exchange: the 32 lanes of the warp each deposit a value, wait for the others, read
// their partner's, and wait again. Dynamic shared memory is one buffer per block, filled
// with 0xFF bytes (NaN for floats) before the block starts, as the device never zeroes it.
// A barrier that not every thread can reach (divergent __syncthreads, a shuffle some lanes
// of a warp skip) is reported as an error, not a hang.
//
// What it cannot see: data races and the memory model (fibers switch only at barriers, so
// every unsynchronised access happens in a fixed, benign order), the device's math library
// (cell_math.h's host exp and tanh are used), warp-synchronous code without shuffles,
// occupancy and timing.
#pragma once

#include <setjmp.h>
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

// CUDA's keywords, for code compiled by the host compiler
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

namespace dynamo_emu {

struct uint3 {
  unsigned int x = 0, y = 0, z = 0;
};
struct dim3 {
  unsigned int x, y, z;
  dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

constexpr int kWarpSize = 32;

struct Fiber {
  jmp_buf context;
  ucontext_t start;
  std::vector<char> stack;
  uint3 thread_idx;
  enum State { kReady, kBlockBarrier, kWarpBarrier, kDone } state = kReady;
  bool started = false;
};

struct Block {
  std::vector<Fiber> fibers;
  jmp_buf scheduler;
  Fiber* current = nullptr;
  std::function<void()> body;
  uint3 block_idx;
  dim3 block_dim, grid_dim;
  int live = 0, block_arrived = 0;
  std::vector<int> warp_arrived, warp_done;
  std::vector<unsigned char> shuffle;  // [warps][32][8]
  std::vector<unsigned char> shared;
  int64_t barriers = 0;  // block barriers completed (for the tests' own check)
};

inline Block*& current_block() {
  static Block* block = nullptr;
  return block;
}

inline void yield_to_scheduler() {
  Block* b = current_block();
  if (!_setjmp(b->current->context)) _longjmp(b->scheduler, 1);
}

inline void fiber_entry() {
  Block* b = current_block();
  b->body();
  b->current->state = Fiber::kDone;
  b->live -= 1;
  b->warp_done[b->current->thread_idx.x / kWarpSize] += 1;
  _longjmp(b->scheduler, 1);
}

inline void resume(Block& b, Fiber& f) {
  b.current = &f;
  if (_setjmp(b.scheduler)) return;  // the fiber yielded or finished
  if (!f.started) {
    f.started = true;
    getcontext(&f.start);
    f.start.uc_stack.ss_sp = f.stack.data();
    f.start.uc_stack.ss_size = f.stack.size();
    f.start.uc_link = nullptr;
    makecontext(&f.start, fiber_entry, 0);
    setcontext(&f.start);
  }
  _longjmp(f.context, 1);
}

// Runs one block to completion; throws on a barrier that cannot complete.
inline void run_block(Block& b) {
  const int n = static_cast<int>(b.block_dim.x);
  for (int i = 0; i < n; ++i) {
    b.fibers[i].state = Fiber::kReady;
    b.fibers[i].started = false;
    b.fibers[i].thread_idx.x = static_cast<unsigned int>(i);
  }
  b.live = n;
  b.block_arrived = 0;
  std::fill(b.warp_arrived.begin(), b.warp_arrived.end(), 0);
  std::fill(b.warp_done.begin(), b.warp_done.end(), 0);
  std::fill(b.shared.begin(), b.shared.end(), static_cast<unsigned char>(0xFF));
  current_block() = &b;
  while (b.live > 0) {
    bool ran = false;
    for (auto& f : b.fibers) {
      if (f.state != Fiber::kReady) continue;
      resume(b, f);
      ran = true;
    }
    bool released = false;
    if (b.block_arrived > 0 && b.block_arrived == b.live) {
      for (auto& f : b.fibers)
        if (f.state == Fiber::kBlockBarrier) f.state = Fiber::kReady;
      b.block_arrived = 0;
      b.barriers += 1;
      released = true;
    }
    for (size_t w = 0; w < b.warp_arrived.size(); ++w) {
      if (b.warp_arrived[w] == 0) continue;
      if (b.warp_done[w] > 0)
        throw std::runtime_error("cuda emulation: __shfl_down_sync with a full mask in warp " + std::to_string(w) +
                                 " of block " + std::to_string(b.block_idx.x) + " after some of its lanes exited");
      if (b.warp_arrived[w] == kWarpSize) {
        for (int l = 0; l < kWarpSize; ++l) {
          Fiber& f = b.fibers[w * kWarpSize + l];
          if (f.state == Fiber::kWarpBarrier) f.state = Fiber::kReady;
        }
        b.warp_arrived[w] = 0;
        released = true;
      }
    }
    if (!ran && !released)
      throw std::runtime_error("cuda emulation: deadlock in block " + std::to_string(b.block_idx.x) + ": " +
                               std::to_string(b.block_arrived) + " of " + std::to_string(b.live) +
                               " live threads wait at __syncthreads, the others at a warp shuffle "
                               "(a barrier inside divergent control flow)");
  }
  current_block() = nullptr;
}

inline void warp_barrier() {
  Block* b = current_block();
  b->current->state = Fiber::kWarpBarrier;
  b->warp_arrived[b->current->thread_idx.x / kWarpSize] += 1;
  yield_to_scheduler();
}

inline const uint3& thread_idx() { return current_block()->current->thread_idx; }
inline const uint3& block_idx() { return current_block()->block_idx; }
inline const dim3& block_dim() { return current_block()->block_dim; }
inline const dim3& grid_dim() { return current_block()->grid_dim; }
inline unsigned char* dynamic_shared() { return current_block()->shared.data(); }

// Launches kernel<<<grid, block, shared_bytes>>>(args...) and returns the number of block
// barriers passed (summed over blocks).
template <class... Params, class... Args>
int64_t launch(void (*kernel)(Params...), dim3 grid, dim3 block, size_t shared_bytes, Args... args) {
  if (block.y != 1 || block.z != 1 || grid.y != 1 || grid.z != 1)
    throw std::runtime_error("cuda emulation: only 1-D grids and blocks");
  if (block.x == 0 || block.x % kWarpSize != 0 || block.x > 1024)
    throw std::runtime_error("cuda emulation: the block size must be a multiple of 32 up to 1024");
  Block b;
  b.block_dim = block;
  b.grid_dim = grid;
  b.fibers.resize(block.x);
  for (auto& f : b.fibers) f.stack.resize(256 * 1024);
  b.warp_arrived.assign(block.x / kWarpSize, 0);
  b.warp_done.assign(block.x / kWarpSize, 0);
  b.shuffle.assign(block.x * 8, 0);
  b.shared.assign(shared_bytes + 16, 0);
  b.body = [&] { kernel(static_cast<Params>(args)...); };
  for (unsigned int i = 0; i < grid.x; ++i) {
    b.block_idx.x = i;
    run_block(b);
  }
  return b.barriers;
}

}  // namespace dynamo_emu

// the built-in variables and functions of device code
#define threadIdx (::dynamo_emu::thread_idx())
#define blockIdx (::dynamo_emu::block_idx())
#define blockDim (::dynamo_emu::block_dim())
#define gridDim (::dynamo_emu::grid_dim())
#define DYNAMO_EXTERN_SHARED(name) unsigned char* name = ::dynamo_emu::dynamic_shared()

inline void __syncthreads() {
  auto* b = ::dynamo_emu::current_block();
  b->current->state = ::dynamo_emu::Fiber::kBlockBarrier;
  b->block_arrived += 1;
  ::dynamo_emu::yield_to_scheduler();
}

template <typename T>
T __shfl_down_sync(unsigned int mask, T value, unsigned int delta) {
  if (mask != 0xffffffffu) throw std::runtime_error("cuda emulation: only full-warp shuffles");
  static_assert(sizeof(T) <= 8, "shuffled values are at most 8 bytes");
  auto* b = ::dynamo_emu::current_block();
  const unsigned int tid = b->current->thread_idx.x, lane = tid % 32, warp = tid / 32;
  unsigned char* slots = b->shuffle.data() + size_t(warp) * 32 * 8;
  std::memcpy(slots + lane * 8, &value, sizeof(T));
  ::dynamo_emu::warp_barrier();  // every lane has deposited its value
  T out = value;
  if (lane + delta < 32) std::memcpy(&out, slots + (lane + delta) * 8, sizeof(T));
  ::dynamo_emu::warp_barrier();  // every lane has read before the slots are reused
  return out;
}

// fibers switch only at barriers, so a read-modify-write is never interleaved
template <typename T>
T atomicAdd(T* address, T value) {
  const T old = *address;
  *address = old + value;
  return old;
}

using std::fabs;
using std::isfinite;
using std::max;
using std::min;
using std::sqrt;
