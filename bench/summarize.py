"""Markdown table of medians and ratios from a pytest-benchmark JSON file.

    python bench/summarize.py bench-meta-rnn.json

For each group (meta_rnn-<cell>-<config>-<pass>, fit_step-<cell>-S) it prints the
median of every implementation, the fused implementation's speed-up over each
other one, and for meta_rnn groups the recurrent-GEMM rate the fused op reaches
(recurrent GEMM flops / median time; x3 flops for forward+backward: the forward
GEMMs, the backward's recurrent GEMMs and the weight-gradient GEMM) against
torch.mm's rate at the same shape, measured in the same run.

Quoted in docs/performance.md.
"""
import json
import re
import sys
from collections import defaultdict


def impl_of(bench):
    m = re.search(r"\[(.*)\]", bench["name"])
    params = bench.get("params") or {}
    for key in ("impl", "backend"):
        if key in params:
            return params[key]
    return m.group(1) if m else bench["name"]


def main(path):
    data = json.load(open(path))
    groups = defaultdict(dict)
    extra = {}
    infos = defaultdict(dict)
    for b in data["benchmarks"]:
        groups[b["group"]][impl_of(b)] = b["stats"]["median"]
        infos[b["group"]][impl_of(b)] = b.get("extra_info", {})
        if impl_of(b) == "fused":
            extra[b["group"]] = b.get("extra_info", {})
    print(f"machine: {data['machine_info'].get('cpu', {}).get('brand_raw', '?')}, "
          f"{data['machine_info'].get('cpu', {}).get('count', '?')} logical CPUs; {data['datetime']}")
    print()
    fp = sorted(g for g in groups if g.startswith("fixed_points"))
    if fp:
        print("| group | fused (s) | python_newton (s) | adam_q (s) | vs python_newton | vs adam_q "
              "| converged fused / python_newton / adam_q | max residual fused / python_newton / adam_q |")
        print("|---|---|---|---|---|---|---|---|")
        impls = ("fused", "python_newton", "adam_q")
        for group in fp:
            med, info = groups[group], infos[group]
            f = med.get("fused")
            cells = [group] + [f"{med[k]:.3f}" if k in med else "-" for k in impls]
            cells += [f"{med[k] / f:.1f}x" if (f and k in med) else "-" for k in impls[1:]]
            cells.append(" / ".join(f"{info[k]['fraction_converged']:.3f}" if k in info else "-" for k in impls))
            cells.append(" / ".join(f"{info[k]['max_residual']:.1e}" if k in info else "-" for k in impls))
            print("| " + " | ".join(cells) + " |")
        print()
    rest = [g for g in groups if not g.startswith("fixed_points")]
    if not rest:
        return
    print("| group | fused (ms) | reference (ms) | torch_nn (ms) | compiled (ms) | vs reference | vs torch_nn "
          "| vs compiled | fused rec-GEMM GFLOP/s | torch.mm GFLOP/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for group in sorted(rest, key=_order):
        med = groups[group]
        f = med.get("fused")
        cells = [group] + [f"{med[k] * 1e3:.2f}" if k in med else "-"
                           for k in ("fused", "reference", "torch_nn", "compiled")]
        cells += [f"{med[k] / f:.2f}x" if (f and k in med) else "-" for k in ("reference", "torch_nn", "compiled")]
        info = extra.get(group, {})
        if f and "recurrent_flops" in info:
            mult = 3.0 if group.endswith("forward_backward") else 1.0
            cells += [f"{mult * info['recurrent_flops'] / f / 1e9:.1f}", f"{info['mm_gflops']:.1f}"]
        else:
            cells += ["-", "-"]
        print("| " + " | ".join(cells) + " |")


def _order(group):
    parts = group.split("-")
    cfg = {"S": 0, "M": 1, "L": 2}
    return (parts[0], parts[1], cfg.get(parts[2], 9) if len(parts) > 2 else 9, parts[-1])


if __name__ == "__main__":
    main(sys.argv[1])
