"""Can a group test on each measure be believed? Rejection rates on built nulls and alternatives.

    python bench/group_tests.py [--draws 100] [--n-per-group 12] [--steps 2000] [--gap 0.06]
                                [--permutations 999] [--seed0 1000] [--out group-tests.json]

Per draw, two populations from ``population.two_groups.two_group_population`` (seed = seed0 + draw):
a null (both groups draw leaks from one interval; they differ in hidden size, input-copy size and
embedding) and an alternative (leak intervals ``--gap`` apart; nuisances drawn alike). On each, one
default DYNAMO fit (``--steps`` steps, the draw's seed) and ``compare.group_test`` (PERMANOVA,
``--permutations`` label permutations) on DYNAMO's two readings (theta and functional distances) and
on CKA, Procrustes and SVCCA of the same recording. Prints, per measure, the fraction of draws
rejected at alpha = 0.05 on the nulls (should be at most alpha) and on the alternatives (power), with a
95% Wilson interval; writes every p-value as JSON. Quoted in docs/guide/trust.md.

Quoted in docs/guide/trust.md.
"""
import argparse
import json
import math
import time


import dynamo_ext as de
from dynamo_ext import compare
from dynamo_ext.population.two_groups import two_group_population
from dynamo_ext.uses.clustering import embedding_distances, functional_distances

MEASURES = ("dynamo", "dynamo_functional", "cka", "procrustes", "svcca")
ALPHA = 0.05


def wilson(k: int, n: int, z: float = 1.96):
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def one_draw(design: str, seed: int, args) -> dict:
    pop, labels = two_group_population(args.n_per_group, design, gap=args.gap, seed=seed)
    t0 = time.perf_counter()
    meta = de.fit(pop, steps=args.steps, seed=seed, progress=False).meta
    t_fit = time.perf_counter() - t0
    rec = pop.record(max_sequences=200)
    d = {"dynamo": embedding_distances(meta, len(pop)), "dynamo_functional": functional_distances(meta, rec.x, len(pop)),
         **compare.distance_matrices(pop, recording=rec, measures=("cka", "procrustes", "svcca"))}
    p = {m: compare.group_test(d[m], labels, n_permutations=args.permutations, seed=seed).p_value for m in MEASURES}
    return {"design": design, "seed": seed, "fit_s": round(t_fit, 2), "p": p}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=100)
    ap.add_argument("--n-per-group", type=int, default=12)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--gap", type=float, default=0.06)
    ap.add_argument("--permutations", type=int, default=999)
    ap.add_argument("--seed0", type=int, default=1000)
    ap.add_argument("--out", default="group-tests.json")
    args = ap.parse_args(argv)
    rows = []
    t0 = time.perf_counter()
    for k in range(args.draws):
        for design in ("null", "alternative"):
            rows.append(one_draw(design, args.seed0 + k, args))
        if (k + 1) % 10 == 0:
            print(f"{k + 1} draws, {time.perf_counter() - t0:.0f} s", flush=True)
    with open(args.out, "w") as f:
        json.dump({"settings": vars(args), "rows": rows}, f, indent=1)
    print(f"\n{args.draws} draws of 2 x {args.n_per_group} networks, fits of {args.steps} steps, "
          f"{args.permutations} permutations, alpha {ALPHA}; leak gap of the alternatives {args.gap}")
    print("| measure | nulls rejected | 95% interval | alternatives rejected | 95% interval |")
    print("|---|---|---|---|---|")
    for m in MEASURES:
        out = []
        for design in ("null", "alternative"):
            ps = [r["p"][m] for r in rows if r["design"] == design]
            k = sum(p <= ALPHA for p in ps)
            lo, hi = wilson(k, len(ps))
            out += [f"{k}/{len(ps)} ({k / len(ps):.2f})", f"{lo:.2f}-{hi:.2f}"]
        print(f"| {m} | " + " | ".join(out) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
