"""The base models' hidden maps packed into one table while a fit runs, with a row-sparse Adam.

A minibatch of (base model, probe sequence) rows reaches the maps A_n, c_n (docs/method.md, "The
meta-model") of the models it holds only: with N = 1024 base models, about 120 of them in a batch
of 128 rows. Kept as 2N parameter tensors, every step pays per map: a concatenation and its
backward, an autograd leaf, a slot in Adam's tensor lists. Here the maps live in one table
[sum d_n + 1, D + 1] (A_n's rows with c_n beside them, a zero row last), each HiddenMap's weight
and bias a view of its rows (so the module, its state_dict and every reader are unchanged); a step
gathers the rows of the models present as one leaf (``gather_table``), and ``step`` applies Adam to those
rows only, with one step count per model (one call of the compiled ``ops.row_adam_``): the update of
torch.optim.Adam on a parameter that has a gradient only when its model is drawn (as
``optim.TouchedAdam`` does for per-model tensors), whatever the number of models.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch
from torch import Tensor, nn

from .. import ops


class PackedMaps:
    """The maps of ``maps`` (HiddenMaps with one ``.linear`` each, all of input size D) packed into
    one table for a fit; ``release`` gives every map its own memory back.

    Args:
        maps: the meta-model's maps, in population order.
        betas, eps: Adam's (torch.optim.Adam's defaults).
    """

    def __init__(self, maps: Sequence[nn.Module], betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.maps = list(maps)
        self.widths = [int(mp.linear.out_features) for mp in self.maps]
        first = self.maps[0].linear.weight
        D = int(first.shape[1])
        # one table [sum d_n + 1, D + 1]: A_n's rows, c_n in the last column, a zero row last
        self.table = first.new_zeros(sum(self.widths) + 1, D + 1)
        self.offsets = torch.tensor([0] + self.widths[:-1], dtype=torch.long).cumsum(0)
        self._width = torch.as_tensor(self.widths, dtype=torch.long)
        with torch.no_grad():
            for mp, start, d in zip(self.maps, self.offsets.tolist(), self.widths):
                block = self.table[start:start + d]
                block[:, :D].copy_(mp.linear.weight)
                block[:, D].copy_(mp.linear.bias)
                mp.linear.weight.data = block[:, :D]
                mp.linear.bias.data = block[:, D]
        self.betas, self.eps = betas, eps
        self.state = {"exp_avg": torch.zeros_like(self.table), "exp_avg_sq": torch.zeros_like(self.table),
                      "steps": torch.zeros(len(self.maps), dtype=torch.long)}
        self._leaf = None  # (ids, rows, leaf) of the last gather_table

    def rows_of(self, ids: Sequence[int]) -> Tensor:
        """Table rows of the models ``ids``, one block per model in order, then the zero row."""
        ids_t = torch.as_tensor(list(ids), dtype=torch.long)
        d = self._width[ids_t]
        starts = torch.repeat_interleave(self.offsets[ids_t] - torch.cumsum(d, 0) + d, d)
        rows = starts + torch.arange(int(d.sum()))
        return torch.cat([rows, rows.new_full((1,), self.table.shape[0] - 1)])

    def gather_table(self, ids: Sequence[int]) -> Tensor:
        """The maps of models ``ids`` as one autograd leaf [sum d_n + 1, D + 1]: A_n's rows with c_n in the
        last column, model after model in order, the zero row last; the next ``step`` applies its gradient."""
        rows = self.rows_of(ids).to(self.table.device)
        leaf = self.table.index_select(0, rows).requires_grad_(True)
        self._leaf = ([int(n) for n in ids], rows, leaf)
        return leaf

    def zero_grad(self) -> None:
        self._leaf = None

    @torch.no_grad()
    def step(self, lr: float) -> None:
        """Adam (torch.optim.Adam's update, one step count per model) on the rows of the last
        ``gather_table``; nothing when it got no gradient."""
        if self._leaf is None or self._leaf[2].grad is None:
            return
        ids, rows, leaf = self._leaf
        ids_t = torch.as_tensor(ids, dtype=torch.long)
        self.state["steps"][ids_t] += 1
        steps = torch.repeat_interleave(self.state["steps"][ids_t], self._width[ids_t]).to(rows.device)
        beta1, beta2 = self.betas
        ops.row_adam_(self.table, self.state["exp_avg"], self.state["exp_avg_sq"], leaf.grad[:-1], rows[:-1], steps,
                      lr, beta1, beta2, self.eps)
        self._leaf = None

    def parameters(self) -> List[nn.Parameter]:
        """The maps' parameters (views of the table): what the fit's other optimizer must leave out."""
        return [p for mp in self.maps for p in (mp.linear.weight, mp.linear.bias)]

    def release(self) -> None:
        """Give every map's weight and bias its own contiguous memory again (the table is left to the collector)."""
        with torch.no_grad():
            for mp in self.maps:
                mp.linear.weight.data = mp.linear.weight.data.clone(memory_format=torch.contiguous_format)
                mp.linear.bias.data = mp.linear.bias.data.clone(memory_format=torch.contiguous_format)


class CombinedOptimizer:
    """The optimizer state of a fit with packed maps, read and written in the form one torch.optim.Adam
    over all of ``params`` would hold it (``state`` keyed by position in ``params``, moments shaped as
    each parameter): ``opt`` holds the parameters outside the table, ``packed`` the maps'. Checkpoints
    (dynamo_ext.meta.checkpoint) go through this, so that a fit with packed maps and one without
    (a distributed fit) resume from each other's checkpoints. One parameter group, as every fit's."""

    def __init__(self, opt: torch.optim.Optimizer, packed: PackedMaps, params: Sequence[Tensor]):
        self.opt, self.packed = opt, packed
        position = {id(p): i for i, p in enumerate(params)}
        self.kept = [position[id(p)] for p in opt.param_groups[0]["params"]]
        self.maps = [(position[id(mp.linear.weight)], position[id(mp.linear.bias)]) for mp in packed.maps]
        self.n_params = len(params)

    def state_dict(self) -> Dict:
        inner = self.opt.state_dict()
        state = {self.kept[i]: s for i, s in inner["state"].items()}
        table, D = self.packed.state, self.packed.table.shape[1] - 1
        for n, (at_w, at_b) in enumerate(self.maps):
            steps = int(table["steps"][n])
            if steps:  # Adam holds no state for a parameter it never updated
                rows = slice(int(self.packed.offsets[n]), int(self.packed.offsets[n]) + self.packed.widths[n])
                for at, cols in ((at_w, slice(0, D)), (at_b, D)):
                    state[at] = {"step": torch.tensor(float(steps)), "exp_avg": table["exp_avg"][rows, cols].clone(),
                                 "exp_avg_sq": table["exp_avg_sq"][rows, cols].clone()}
        return {"state": state, "param_groups": [{**inner["param_groups"][0], "params": list(range(self.n_params))}]}

    def load_state_dict(self, state_dict: Dict) -> None:
        state, group = state_dict["state"], state_dict["param_groups"][0]
        self.opt.load_state_dict({"state": {i: state[at] for i, at in enumerate(self.kept) if at in state},
                                  "param_groups": [{**group, "params": list(range(len(self.kept)))}]})
        table, D = self.packed.state, self.packed.table.shape[1] - 1
        for name in ("exp_avg", "exp_avg_sq"):
            table[name].zero_()
        table["steps"].zero_()
        for n, (at_w, at_b) in enumerate(self.maps):
            if at_w not in state:
                continue
            rows = slice(int(self.packed.offsets[n]), int(self.packed.offsets[n]) + self.packed.widths[n])
            for at, cols in ((at_w, slice(0, D)), (at_b, D)):
                for name in ("exp_avg", "exp_avg_sq"):
                    table[name][rows, cols].copy_(state[at][name])
            table["steps"][n] = int(float(state[at_w]["step"]))
