// The constants and the progress test of the newton_fixed_points rule, shared by
// the CPU and CUDA backends (and mirrored by dynamo_ext/reference.py).
#pragma once

#include <cstdint>

#include "../cell_math.h"

namespace dynamo_ext {
namespace ops {

// damping tries (mu, 10 mu, 100 mu, ...) of one Levenberg-Marquardt step
constexpr int kMaxDampingTries = 12;
// halvings of a Newton step that does not lower ||F|| before a damped step is tried
constexpr int kBacktracks = 3;
// iterations over which ||F||_2 must fall by the fraction min_progress
constexpr int kProgressWindow = 5;

// The last kProgressWindow values of ||F||_2^2 of one candidate, a ring. A
// candidate whose ||F||_2 fell by less than the fraction min_progress over its
// last kProgressWindow iterations has stalled: it is creeping towards a slow
// point (a local minimum of q = ||F||^2 / 2 above zero), not converging to a
// fixed point, where Newton's convergence is quadratic. min_progress = 0 never
// stops a candidate (every accepted step lowers ||F||).
template <typename T>
struct ProgressWindow {
  T past[kProgressWindow];
  T keep;  // (1 - min_progress)^2

  DYNAMO_HD explicit ProgressWindow(T min_progress) : keep((T(1) - min_progress) * (T(1) - min_progress)) {}

  // At the start of iteration `it` (it steps taken so far) with fsq = ||F||_2^2.
  DYNAMO_HD bool stalled(int64_t it, T fsq) {
    T& slot = past[it % kProgressWindow];
    const bool slow = it >= kProgressWindow && fsq > keep * slot;
    slot = fsq;
    return slow;
  }
};

}  // namespace ops
}  // namespace dynamo_ext
