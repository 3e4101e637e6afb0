"""The all-pairs measures on several ranks against one process, at equal total cores: equivalence first,
then the time per pair.

    python bench/distributed_all_pairs.py [--models 256] [--samples 2000] [--ranks 2] [--measure procrustes]
                                          [--out FILE]

``--models`` networks of random widths 16-128 (log-uniform) on ``--samples`` shared samples. One process
with ``--ranks`` threads runs ``pairwise_distances(data, measure)``; then ``--ranks`` gloo ranks on
loopback (torch.multiprocessing, one thread each) run ``pairwise_distances(..., distributed=True)``,
timed on rank 0 from a barrier to the end (the all-reduce included). On a cluster, the same call runs
under ``torchrun --nnodes M --nproc_per_node K``.

Quoted in docs/performance.md.
"""
import argparse
import json
import os
import socket
import time

import numpy as np
import torch
import torch.multiprocessing as mp


def _data(models, samples, seed=0):
    g = np.random.default_rng(seed)
    widths = np.exp(g.uniform(np.log(16), np.log(128), models)).astype(int)
    return [g.standard_normal((samples, int(w))) for w in widths]


def _rank(rank, world, port, args, out):
    from dynamo_ext.compare import pairwise_distances

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    try:
        data = _data(args.models, args.samples)
        torch.distributed.barrier()
        t = time.perf_counter()
        d = pairwise_distances(data, args.measure, distributed=True)
        seconds = time.perf_counter() - t
        if rank == 0:
            np.save(f"{out}/distributed.npy", d)
            with open(f"{out}/distributed.json", "w") as f:
                json.dump({"seconds": seconds}, f)
    finally:
        torch.distributed.destroy_process_group()


def main():
    from dynamo_ext.compare import pairwise_distances

    p = argparse.ArgumentParser()
    p.add_argument("--models", type=int, default=256)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--measure", default="procrustes")
    p.add_argument("--folder", default="/tmp/distributed-all-pairs")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    os.makedirs(args.folder, exist_ok=True)
    torch.set_num_threads(args.ranks)
    data = _data(args.models, args.samples)
    t = time.perf_counter()
    one = pairwise_distances(data, args.measure)
    single = time.perf_counter() - t
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_rank, args=(args.ranks, port, args, args.folder), nprocs=args.ranks, start_method="spawn")
    dist = np.load(f"{args.folder}/distributed.npy")
    with open(f"{args.folder}/distributed.json") as f:
        distributed = json.load(f)["seconds"]
    pairs = args.models * (args.models - 1) // 2
    rel = float(np.abs(dist - one).max() / np.abs(one).max())
    row = {"date": time.strftime("%Y-%m-%d"), "models": args.models, "samples": args.samples, "ranks": args.ranks,
           "measure": args.measure, "cores": args.ranks, "max_relative_difference": rel,
           "one_process_s": single, "distributed_s": distributed,
           "one_process_ms_per_pair": 1e3 * single / pairs, "distributed_ms_per_pair": 1e3 * distributed / pairs,
           "ratio": distributed / single}
    print(json.dumps(row, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(row, f, indent=1)


if __name__ == "__main__":
    main()
