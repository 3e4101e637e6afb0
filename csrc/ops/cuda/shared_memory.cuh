// The dynamic shared memory of a thread block, as the device code of every op declares it
// (hidden_map_loss_device.cuh, newton_fixed_points_device.cuh). The host emulation under
// tests/cuda_emulation defines its own DYNAMO_EXTERN_SHARED before including them.
#pragma once

#ifndef DYNAMO_EXTERN_SHARED
#define DYNAMO_EXTERN_SHARED(name) extern __shared__ __align__(16) unsigned char name[]
#endif
