"""Benchmark problems for meta_rnn_sequence: one embedding-conditioned RNN layer, four implementations.

Configurations (B sequences, T steps, I inputs, D meta-state size, m embedding size)
are those of the fused-kernel benchmarks (docs/performance.md). Every implementation computes the same function
of (x, theta, z0, weights):
- fused:     dynamo_ext.ops.meta_rnn_sequence (one call for the sequence)
- reference: dynamo_ext.reference.meta_rnn_sequence (eager loop over cells)
- torch_nn:  torch.nn.GRU / torch.nn.RNN fed [x; theta] with weight_ih = [W_ih, U]
- compiled:  torch.compile of the reference
"""
from __future__ import annotations

import torch

from dynamo_ext import ops, reference

CONFIGS = {"S": (256, 40, 1, 64, 2), "M": (512, 50, 8, 128, 4), "L": (1024, 100, 32, 256, 8)}
CELLS = ("tanh", "gru")
IMPLS = ("fused", "reference", "torch_nn", "compiled")


class Problem:
    """Inputs, parameters and a callable per implementation for one (cell, config)."""

    def __init__(self, cell: str, config: str, requires_grad: bool, seed: int = 0, device: str = "cpu"):
        B, T, I, D, m = CONFIGS[config]
        self.cell, self.config, self.shape = cell, config, (B, T, I, D, m)
        G = reference.gate_count(cell)
        g = torch.Generator().manual_seed(seed)
        k = D ** -0.5

        def p(*shape, scale):  # drawn on the CPU (the same values on every device), then moved
            return (torch.randn(*shape, generator=g) * scale).to(device).requires_grad_(requires_grad)

        self.device = device
        self.x = torch.randn(T, B, I, generator=g).to(device)
        self.theta = p(B, m, scale=1.0)
        self.z0 = p(B, D, scale=0.5)
        self.w_ih, self.w_hh = p(G * D, I, scale=k), p(G * D, D, scale=k)
        self.U = p(G * D, m, scale=0.3)
        self.b_ih, self.b_hh = p(G * D, scale=0.1), p(G * D, scale=0.1)
        self.params = [self.theta, self.z0, self.w_ih, self.w_hh, self.U, self.b_ih, self.b_hh]
        self._compiled = None
        self._nn = None

    # recurrent GEMM flops of the forward: T steps of [B, D] x [D, G*D]
    def recurrent_flops(self) -> float:
        B, T, _, D, _ = self.shape
        return 2.0 * T * B * D * reference.gate_count(self.cell) * D

    def _loop(self, fn):
        cond = self.theta @ self.U.T
        return fn(self.x, self.z0, cond, self.w_ih, self.w_hh, self.b_ih, self.b_hh, self.cell)

    def run(self, impl: str) -> torch.Tensor:
        if impl == "fused":
            return self._loop(ops.meta_rnn_sequence)
        if impl == "reference":
            return self._loop(reference.meta_rnn_sequence)
        if impl == "compiled":
            if self._compiled is None:
                self._compiled = torch.compile(reference.meta_rnn_sequence, dynamic=False)
            return self._loop(self._compiled)
        if impl == "torch_nn":
            return self._torch_nn()
        raise ValueError(f"unknown implementation {impl!r}")

    def _torch_nn(self) -> torch.Tensor:
        B, T, I, D, m = self.shape
        if self._nn is None:
            cls = torch.nn.GRU if self.cell == "gru" else torch.nn.RNN
            net = cls(I + m, D).to(self.device)
            with torch.no_grad():
                net.weight_ih_l0.copy_(torch.cat([self.w_ih, self.U], 1))
                net.weight_hh_l0.copy_(self.w_hh)
                net.bias_ih_l0.copy_(self.b_ih)
                net.bias_hh_l0.copy_(self.b_hh)
            net.requires_grad_(self.theta.requires_grad)
            self._nn = net
        x_aug = torch.cat([self.x, self.theta.unsqueeze(0).expand(T, B, m)], -1)
        out, _ = self._nn(x_aug, self.z0.unsqueeze(0))
        return out

    def step(self, impl: str, backward: bool) -> None:
        if backward:
            out = self.run(impl)
            out.backward(torch.ones_like(out))
        else:
            with torch.no_grad():
                self.run(impl)
