"""Run from outside the source tree: the installed dynamo_ext imports and its ops compute what
their plain-PyTorch references compute (CI, after installing from the source distribution)."""
import sys

import torch

import dynamo_ext
from dynamo_ext import ops, reference

assert "site-packages" in dynamo_ext.__file__, f"imported from the source tree: {dynamo_ext.__file__}"
g = torch.Generator().manual_seed(0)
for cell in ("tanh", "gru"):
    G = reference.gate_count(cell)
    x, h0 = torch.randn(5, 3, 2, generator=g), torch.randn(3, 4, generator=g)
    w = [torch.randn(G * 4, 2, generator=g), 0.3 * torch.randn(G * 4, 4, generator=g)]
    b = [torch.randn(G * 4, generator=g), torch.randn(G * 4, generator=g)]
    cond = torch.randn(3, G * 4, generator=g)
    torch.testing.assert_close(ops.meta_rnn_sequence(x, h0, cond, *w, *b, cell),
                               reference.meta_rnn_sequence(x, h0, cond, *w, *b, cell))
for cell in ("tanh", "gru", "lstm"):
    G, H = reference.gate_count(cell), 4
    D = reference.state_size(cell, H)
    args = (torch.rand(8, D, generator=g, dtype=torch.float64), torch.zeros(8, 2, dtype=torch.float64),
            torch.zeros(8, G * H, dtype=torch.float64), torch.randn(G * H, 2, generator=g, dtype=torch.float64),
            torch.randn(G * H, H, generator=g, dtype=torch.float64), torch.zeros(G * H, dtype=torch.float64),
            torch.zeros(G * H, dtype=torch.float64))
    z, res, _, conv, _ = ops.newton_fixed_points(*args, cell=cell)
    assert bool(conv.any()), cell
    F = reference.cell_step(z[conv], args[1][conv] @ args[3].T, args[4], args[6], cell) - z[conv]
    assert float(F.abs().max()) <= 1e-10, cell
table = [torch.randn(6, 3, generator=g, dtype=torch.float64) for _ in range(2)] + [torch.rand(6, 3, dtype=torch.float64)]
want = [t.clone() for t in table]
rows, grad, steps = torch.tensor([4, 1]), torch.randn(2, 3, generator=g, dtype=torch.float64), torch.tensor([1, 3])
ops.row_adam_(*table, grad, rows, steps, 0.1)
reference.row_adam_(*want, grad, rows, steps, 0.1)
for a, b in zip(table, want):
    torch.testing.assert_close(a, b)
z, table = torch.randn(4, 3, 5, generator=g, dtype=torch.float64), torch.randn(9, 6, generator=g, dtype=torch.float64)
map_row, width, start = torch.tensor([0, 0, 4, 6]), torch.tensor([4, 4, 2, 3]), torch.tensor([0, 12, 24, 30])
targets = torch.randn(39, generator=g, dtype=torch.float64)
torch.testing.assert_close(ops.hidden_map_loss(z, table, map_row, width, targets, start),
                           reference.hidden_map_loss(z, table, map_row, width, targets, start))
print(f"installed dynamo_ext {dynamo_ext.__version__} from {dynamo_ext.__file__}: every op correct;",
      "CUDA build" if dynamo_ext.WITH_CUDA else "CPU build", file=sys.stderr)
