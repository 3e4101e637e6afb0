"""Small calls of every op on one device, forward and backward, each compared with the CPU op: the
program that compute-sanitizer (memcheck, racecheck) runs in bench/gpu/run_all.sh.

    python bench/gpu/small_calls.py [--device cuda]

Sizes cover both CUDA paths of newton_fixed_points (state size <= 128: one block per candidate with
the matrix in shared memory; above: the batched path). Exit status 1 when a result differs.

Quoted in docs/performance.md.
"""
import argparse
import sys

import torch

from dynamo_ext import ops, reference


def sequence_inputs(T, B, I, D, cell, dtype, device, g):
    G = reference.gate_count(cell)
    k = D ** -0.5

    def r(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).to(dtype).to(device).requires_grad_()
    return (r(T, B, I), r(B, D, scale=0.5), r(B, G * D, scale=0.3), r(G * D, I, scale=k), r(G * D, D, scale=k),
            r(G * D, scale=0.1), r(G * D, scale=0.1))


def newton_inputs(cell, K, D, device, g):
    G = reference.gate_count(cell)
    H = D // 2 if cell == "lstm" else D
    D = reference.state_size(cell, H)
    dt = torch.float64
    args = (torch.rand(K, D, generator=g, dtype=dt) * 2 - 1, torch.randn(K, 2, generator=g, dtype=dt) * 0.3,
            (torch.randn(1, G * H, generator=g, dtype=dt) * 0.2).expand(K, -1).contiguous(),
            torch.randn(G * H, 2, generator=g, dtype=dt), torch.randn(G * H, H, generator=g, dtype=dt) * 1.5 / H ** 0.5,
            torch.randn(G * H, generator=g, dtype=dt) * 0.1, torch.randn(G * H, generator=g, dtype=dt) * 0.1)
    return [a.to(device) for a in args]


def rel(a, b):
    a, b = a.detach().cpu().double(), b.detach().cpu().double()
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-30))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args()
    g = torch.Generator().manual_seed(0)
    failures = []
    for cell in ("tanh", "gru"):
        for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-10)):
            dev = sequence_inputs(5, 7, 3, 24, cell, dtype, a.device, g)
            cpu = [t.detach().cpu().requires_grad_() for t in dev]
            out_d, out_c = ops.meta_rnn_sequence(*dev, cell), ops.meta_rnn_sequence(*cpu, cell)
            grad = torch.randn(out_c.shape, generator=g, dtype=torch.float64).to(dtype)
            gd = torch.autograd.grad(out_d, dev, grad.to(a.device))
            gc = torch.autograd.grad(out_c, cpu, grad)
            err = max([rel(out_d, out_c)] + [rel(x, y) / 10 for x, y in zip(gd, gc)])
            print(f"meta_rnn_sequence {cell} {dtype}: max relative error {err:.2e}")
            if not err <= tol:
                failures.append(("meta_rnn_sequence", cell, str(dtype), err))
    for cell in ("tanh", "gru", "lstm"):
        for D in (12, 160):  # shared-memory path and the batched path
            dev = newton_inputs(cell, 16, D, a.device, g)
            z_d, res_d, _, conv_d, _ = ops.newton_fixed_points(*dev, cell=cell, tol=1e-10, max_iter=40)
            z_c, res_c, _, conv_c, _ = ops.newton_fixed_points(*[t.cpu() for t in dev], cell=cell, tol=1e-10,
                                                               max_iter=40)
            both = (conv_d.cpu() & conv_c)
            agree = float((z_d.cpu()[both] - z_c[both]).abs().max()) if bool(both.any()) else 0.0
            print(f"newton_fixed_points {cell} D={D}: converged {int(conv_d.sum())}/{len(conv_d)} "
                  f"(CPU {int(conv_c.sum())}); largest difference where both converged {agree:.2e}")
            if int(conv_d.sum()) < 0.9 * int(conv_c.sum()):
                failures.append(("newton_fixed_points", cell, D, "fewer converged"))
    for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-12)):  # 333 x 65 elements: a partial last block
        table = [torch.randn(500, 65, generator=g, dtype=torch.float64).to(dtype) for _ in range(2)]
        table.append(torch.rand(500, 65, generator=g, dtype=torch.float64).to(dtype))
        rows, grad = torch.randperm(500, generator=g)[:333], torch.randn(333, 65, generator=g, dtype=torch.float64)
        steps = torch.randint(1, 9, (333,), generator=g)
        dev = [t.to(a.device) for t in table]
        ops.row_adam_(*dev, grad.to(dtype).to(a.device), rows.to(a.device), steps.to(a.device), 1e-2)
        ops.row_adam_(*table, grad.to(dtype), rows, steps, 1e-2)
        err = max(rel(x, y) for x, y in zip(dev, table))
        print(f"row_adam_ {dtype}: max relative error {err:.2e}")
        if not err <= tol:
            failures.append(("row_adam_", str(dtype), err))
    for dtype, tol in ((torch.float32, 1e-4), (torch.float64, 1e-11)):  # maps shared by rows, a 300-row map
        widths = torch.tensor([300, 2, 17])
        model = torch.randint(3, (11,), generator=g)
        starts = torch.cumsum(widths, 0) - widths
        w = widths[model]
        tstart = torch.cumsum(5 * w, 0) - 5 * w
        cpu = [torch.randn(11, 5, 9, generator=g, dtype=torch.float64).to(dtype),
               torch.randn(int(widths.sum()) + 1, 10, generator=g, dtype=torch.float64).to(dtype)]
        idx = [starts[model], w, torch.randn(int((5 * w).sum()), generator=g, dtype=torch.float64).to(dtype), tstart]
        out = []
        for tensors in ([t.to(a.device) for t in cpu + idx], cpu + idx):
            z, table = (t.clone().requires_grad_(True) for t in tensors[:2])
            loss = ops.hidden_map_loss(z, table, *tensors[2:])
            loss.backward()
            out.append([loss.detach().cpu(), z.grad.cpu(), table.grad.cpu()])
        err = max(rel(x, y) for x, y in zip(*out))
        print(f"hidden_map_loss {dtype}: max relative error {err:.2e}")
        if not err <= tol:
            failures.append(("hidden_map_loss", str(dtype), err))
    if a.device != "cpu":
        torch.cuda.synchronize()
    print("FAILURES" if failures else "all small calls agree with the CPU op", failures or "")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
