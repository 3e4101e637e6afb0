"""RecordedTrajectories: a network known only by its recorded activity, as a member of a population."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn


class RecordedTrajectories(nn.Module):
    """A network known only by its activity: ``record`` returns the given hidden states [S, T, d] (and
    outputs [S, T, C], zeros [S, T, 1] by default) whatever the inputs, which must be the probe
    inputs they were recorded on. Lets ``DYNAMO.fit`` and ``transform`` take arrays."""

    def __init__(self, hidden, outputs=None):
        super().__init__()
        h = torch.as_tensor(np.asarray(hidden) if not isinstance(hidden, Tensor) else hidden).float()
        if h.dim() != 3:
            raise ValueError(f"hidden states must be [trials, time, units], got shape {tuple(h.shape)}")
        self.hidden = h
        self.outputs = (h.new_zeros(*h.shape[:2], 1) if outputs is None
                        else torch.as_tensor(np.asarray(outputs) if not isinstance(outputs, Tensor) else outputs).float())
        self.state_size = int(h.shape[-1])

    def record(self, x: Tensor):
        if x.shape[:2] != self.hidden.shape[:2]:
            raise ValueError(f"these hidden states were recorded on {tuple(self.hidden.shape[:2])} (trials, time) "
                             f"inputs, got inputs of shape {tuple(x.shape)}: pass the probe inputs of the fit")
        return self.hidden, self.outputs


__all__ = ["RecordedTrajectories"]
