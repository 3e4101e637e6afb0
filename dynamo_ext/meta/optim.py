"""The optimiser every fit uses: Adam, fused, visiting only the parameters that have a gradient."""
from __future__ import annotations

import torch


class TouchedAdam(torch.optim.Adam):
    """torch.optim.Adam whose ``step`` and ``zero_grad`` visit only the parameters that have a gradient.

    A minibatch reaches the maps A_n of the models it holds only; Adam already leaves a parameter
    without a gradient untouched (its moments and step count included), but it still walks every
    parameter in Python, twice a step: with 1024 base models, 2048 map tensors. Here ``step`` hands
    Adam the parameters with a gradient (the same update, bit for bit) and remembers them, and the
    next ``zero_grad`` clears those (or every parameter, when no step came in between)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._touched = None

    @torch.no_grad()
    def step(self, closure=None):
        everything = [group["params"] for group in self.param_groups]
        touched = [[p for p in params if p.grad is not None] for params in everything]
        for group, params in zip(self.param_groups, touched):
            group["params"] = params
        try:
            loss = super().step(closure)
        finally:
            for group, params in zip(self.param_groups, everything):
                group["params"] = params
        self._touched = [p for params in touched for p in params]
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        if self._touched is None or not set_to_none:
            super().zero_grad(set_to_none)
        else:
            for p in self._touched:
                p.grad = None
        self._touched = None


def make_optimizer(params, lr: float) -> torch.optim.Adam:
    """Adam as every fit uses it: PyTorch's fused implementation (one kernel over all parameters;
    0.13 ms a step against 0.47 ms for the per-parameter loop on the fit-step benchmark's 23
    parameters, CPU), visiting only the parameters with a gradient (``TouchedAdam``)."""
    return TouchedAdam(params, lr=lr, fused=True)
