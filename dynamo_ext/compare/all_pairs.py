"""CKA, SVCCA and Procrustes between every pair of N models as a few large matrix products.

Each of the three measures reads, for a pair (i, j), only the cross-product
block X_i^T X_j of the two models' centred samples (SVCCA: U_i^T U_j of their
top singular directions) and per-model statistics computed once:

- debiased linear CKA (Song et al. 2012, Eq. 5; Nguyen et al. 2021): the
  unbiased HSIC needs ||X_i^T X_j||_F^2, the per-sample squared norms
  kd_i = diag(X_i X_i^T) and k1_i = X_i (X_i^T 1) - kd_i; over all pairs
  these are the squared block sums of X^T X and two [N, N] products;
- Procrustes (Williams et al. 2021; Ding et al. 2021): sqrt(2 - 2 ||X_i^T X_j||_* /
  (||X_i||_F ||X_j||_F)), the nuclear norm being the sum of the block's singular values;
- SVCCA (Raghu et al. 2017): the mean over min(k_i, k_j) of the clipped singular
  values of U_i^T U_j = W_i^T (X_i^T X_j) W_j, with U_i = X_i W_i the top singular
  directions (``Representation.svcca_map``): the same block as the other two.

So the models are sorted by width and cut into column blocks of about
``block_columns`` columns; for every pair of blocks one GEMM gives all the
models' cross-products at once, the squared sums are reduced per model pair
with two ``index_add_``, and the singular values of every pair's block come
from one batched symmetric eigensolve (``eigvalsh`` of the smaller Gram
matrix) on the zero-padded blocks (padding adds only zero singular values). The flops are those of the Gram matrix of
all models' samples, n * (sum_n d_n)^2, in float64, at the GEMM rate; the
per-pair functions (``linear_cka``, ``svcca``, ``procrustes_distance``) give
the same values one pair at a time and are the reference in the tests.
"""
from __future__ import annotations

import time
from functools import lru_cache
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from .representation import Representation, is_on_disk, as_array

MATRIX_MEASURES = ("cka", "svcca", "procrustes")


def _blocks(widths: Sequence[int], block_columns: int) -> List[np.ndarray]:
    """Model indices sorted by width, cut into consecutive blocks of at most ``block_columns`` columns
    (at least one model per block) whose widths lie within 1.5x (or 16) of the block's smallest, so
    that padding every pair's block to the widest adds little."""
    order = np.argsort(np.asarray(widths), kind="stable")
    blocks, current, cols = [], [], 0
    for i in order:
        narrowest = widths[current[0]] if current else 0
        if current and (cols + widths[i] > block_columns or widths[i] > max(1.5 * narrowest, narrowest + 16)):
            blocks.append(np.asarray(current))
            current, cols = [], 0
        current.append(int(i))
        cols += widths[i]
    if current:
        blocks.append(np.asarray(current))
    return blocks


def _stack(reps: Sequence[Representation], members: np.ndarray):
    """The block's centred samples side by side [n, w] (float64, made here: the representations hold
    none), each column's model (position in the block), and a gather index [len(members), max width]
    into the columns (w for padding: a zero column appended)."""
    parts = [reps[i].centred() for i in members]
    widths = [p.shape[1] for p in parts]
    stacked = torch.cat(parts, dim=1)
    del parts
    owner = torch.repeat_interleave(torch.arange(len(widths)), torch.tensor(widths))
    w, wmax = int(sum(widths)), max(widths)
    index = torch.full((len(widths), wmax), w, dtype=torch.long)
    offset = 0
    for k, width in enumerate(widths):
        index[k, :width] = torch.arange(offset, offset + width)
        offset += width
    return stacked, owner, index


def _pair_blocks(reps: Sequence[Representation], block_columns: int, progress: bool, desc: str, rank: int = 0,
                 world: int = 1):
    """For every pair of column blocks (I <= J) of this rank's share (pair k of the upper triangle, in
    row order, belongs to rank k % world): (members of I, members of J, C = X_I^T X_J, the column owners
    and gather indices of I and J)."""
    blocks = _blocks([r.width for r in reps], block_columns)
    pairs = [(a, b) for a in range(len(blocks)) for b in range(a, len(blocks))][rank::world]
    with tqdm(total=len(pairs), desc=desc, unit="block", disable=not progress or len(pairs) < 2) as bar:
        row = None
        for a, b in pairs:
            if row is None or row[0] != a:
                row = None  # the previous row's block freed before the next is made
                row = (a, _stack(reps, blocks[a]))  # once per row of blocks
            sa = row[1]
            sb = sa if a == b else _stack(reps, blocks[b])
            yield blocks[a], blocks[b], sa[0].t() @ sb[0], sa, sb
            bar.update()


def _padded(c: Tensor, sa, sb) -> Tensor:
    """Every model pair's cross-product block of c, zero-padded: [n_I, n_J, max d_I, max d_J]."""
    cp = torch.nn.functional.pad(c, (0, 1, 0, 1))
    return cp[sa[2][:, None, :, None], sb[2][None, :, None, :]]


def _singular_value_sums(blocks: Tensor, clip: float = float("inf")) -> Tensor:
    """Sum over each matrix of [..., a, b] of its singular values, each clipped at ``clip``: the
    square roots of the eigenvalues of the smaller Gram matrix (``eigvalsh``, about twice as fast as
    ``svdvals`` on the CPU at 64-256 units; the square root costs the smallest singular values
    precision: sums within ~1e-8 of the SVD's)."""
    gram = blocks @ blocks.mT if blocks.shape[-2] <= blocks.shape[-1] else blocks.mT @ blocks
    return torch.linalg.eigvalsh(gram).clamp_(min=0.0).sqrt_().clamp_(max=clip).sum(-1)


def _block_sums(values: Tensor, sa, sb) -> Tensor:
    """Sum of ``values`` [w_I, w_J] over each model pair's block: [n_I, n_J]."""
    rows = values.new_zeros(len(sa[2]), values.shape[1]).index_add_(0, sa[1], values)
    return values.new_zeros(len(sa[2]), len(sb[2])).index_add_(1, sb[1], rows)


def _symmetric(a: np.ndarray, b: np.ndarray, block: Tensor, out: np.ndarray) -> None:
    """Write a pair of blocks' values and their transpose (a block with itself: its symmetric part, as
    (i, j) and (j, i) are computed from transposed products)."""
    values = block.numpy()
    if a is b:
        values = 0.5 * (values + values.T)
    out[np.ix_(a, b)] = values
    out[np.ix_(b, a)] = values.T


def all_pairs(reps: Sequence[Representation], measures: Sequence[str] = MATRIX_MEASURES,
              block_columns: int = 4096, progress: bool = False, distributed: bool = False) -> Dict[str, np.ndarray]:
    """Every pair's CKA, SVCCA and Procrustes distance from per-model statistics and blocked GEMMs.

    With ``distributed`` (an initialised torch.distributed process group, e.g. under ``torchrun``), each
    rank computes the pairs of blocks k with k % world == rank, and one all-reduce (a sum: every pair is
    one rank's) of the per-pair sums gives every rank the whole matrices; the per-model statistics are
    computed by every rank from its own copy of ``reps``.

    Args:
        reps: one Representation per model (samples [n, d_i], the same n; read in place, each block's
            centred float64 columns made when the block is used).
        measures: a subset of ("cka", "svcca", "procrustes"); they share one pass of products.
        block_columns: columns (summed widths) per block of models; memory beyond the representations'
            own data is about n * 2 * block_columns * 8 bytes plus the padded pair blocks and the
            [N, N] results.
        progress: a tqdm bar over the pairs of blocks.
        distributed: split the pairs of blocks over the ranks of the default process group.

    Returns:
        Per measure an [N, N] float64 distance matrix with a zero diagonal: ``cka``: 1 - debiased
        linear CKA; ``svcca``: 1 - SVCCA; ``procrustes``: the Procrustes distance in [0, sqrt(2)];
        the per-pair functions of this package's values within ~1e-8.

    Raises:
        ValueError: an unknown measure, fewer than one model, different sample counts, ``distributed``
            without an initialised process group.
    """
    rank, world = _rank_and_world(distributed)
    bad = [m for m in measures if m not in MATRIX_MEASURES]
    if bad:
        raise ValueError(f"argument 'measures' must be a subset of {MATRIX_MEASURES}, got {bad}")
    if len(reps) == 0:
        raise ValueError("argument 'reps' must hold at least one Representation, got none")
    counts = {r.n for r in reps}
    if len(counts) != 1:
        raise ValueError(f"representations must have the same number of samples (same probe inputs), "
                         f"got {sorted(counts)}")
    N, n = len(reps), reps[0].n
    frob2 = np.zeros((N, N)) if "cka" in measures else None
    nuclear = np.zeros((N, N)) if "procrustes" in measures else None
    rho = np.zeros((N, N)) if "svcca" in measures else None
    kd = torch.empty(n, N, dtype=torch.float64) if frob2 is not None else None  # CKA's per-sample statistics
    k1 = torch.empty_like(kd) if kd is not None else None
    for i, r in enumerate(reps):  # every model's per-model work from one read of its samples
        x = r.prepare(norm=nuclear is not None, svcca=rho is not None)
        if kd is not None:
            kd[:, i] = (x * x).sum(1)
            k1[:, i] = x @ x.sum(0) - kd[:, i]
        del x
    maps = [torch.from_numpy(r.svcca_map) for r in reps] if rho is not None else None
    for a, b, c, sa, sb in _pair_blocks(reps, block_columns, progress, "all-pairs " + "/".join(measures), rank, world):
        if frob2 is not None:
            _symmetric(a, b, _block_sums(c * c, sa, sb), frob2)
        if nuclear is None and rho is None:
            continue
        pairs = _padded(c, sa, sb)
        if nuclear is not None:
            _symmetric(a, b, _singular_value_sums(pairs), nuclear)
        if rho is not None:  # U_i^T U_j = W_i^T X_i^T X_j W_j: the canonical correlations of the top directions
            wa, wb = _padded_maps(maps, a, sa), _padded_maps(maps, b, sb)
            _symmetric(a, b, _singular_value_sums(wa.mT[:, None] @ pairs @ wb[None], clip=1.0), rho)
        del pairs
    _sum_over_ranks(world, frob2, nuclear, rho)
    out: Dict[str, np.ndarray] = {}
    if frob2 is not None:
        out["cka"] = _cka_distances(kd, k1, frob2, n)
    if nuclear is not None:
        norms = np.array([r.norm for r in reps])
        out["procrustes"] = np.sqrt(np.maximum(2.0 - 2.0 * nuclear / np.outer(norms, norms), 0.0))
    if rho is not None:
        k = np.array([max(w.shape[1], 1) for w in maps])
        out["svcca"] = 1.0 - rho / np.minimum.outer(k, k)
    for d in out.values():
        np.fill_diagonal(d, 0.0)
    return {m: out[m] for m in measures}


def _padded_maps(maps: Sequence[Tensor], members: np.ndarray, stacked) -> Tensor:
    """The SVCCA maps W [d_i, k_i] of a block's models, zero-padded to [n_I, max d_I, max k_I]."""
    rows, cols = stacked[2].shape[1], max(maps[i].shape[1] for i in members)
    out = torch.zeros(len(members), rows, max(cols, 1), dtype=torch.float64)
    for k, i in enumerate(members):
        w = maps[i]
        out[k, :w.shape[0], :w.shape[1]] = w
    return out


def _rank_and_world(distributed: bool):
    if not distributed:
        return 0, 1
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError("argument 'distributed' needs an initialised torch.distributed process group: start the "
                         "program with torchrun and call init_process_group()")
    return dist.get_rank(), dist.get_world_size()


def _sum_over_ranks(world: int, *matrices) -> None:
    """Each rank's partial [N, N] sums (zero where another rank computed) summed in place over the ranks."""
    if world == 1:
        return
    import torch.distributed as dist

    for m in matrices:
        if m is not None:
            t = torch.from_numpy(m)  # shares memory with m: the sum lands in m
            dist.all_reduce(t)


def gemm_rate(n: int = 2048, width: int = 512) -> float:
    """torch.mm's float64 rate (flop/s) on the running machine at an all-pairs block's shape [width, n] x
    [n, width], best of three."""
    a = torch.randn(n, width, dtype=torch.float64)
    best = float("inf")
    for _ in range(4):
        t = time.perf_counter()
        torch.mm(a.t(), a)
        best = min(best, time.perf_counter() - t)
    return 2.0 * n * width * width / max(best, 1e-9)


# calibration of ``estimate_seconds`` (bench/bench_scale.py on the continuum population at N = 64 and
# 256, 2 cores): CKA took 1.25-1.7x its Gram GEMM at torch.mm's rate; Procrustes' batched Gram-and-
# eigensolve of every pair's block ran at about an eighth of that rate
GEMM_OVERHEAD, PAIR_SLOWDOWN = 1.5, 8.0


def estimate_seconds(measure: str, n_samples: int, widths: Sequence[int], rate: float) -> float:
    """Predicted time of ``all_pairs`` for one measure: the upper triangle of the Gram matrix's GEMM
    (n * (sum d)^2 flop) at ``rate`` times ``GEMM_OVERHEAD``, plus (Procrustes, SVCCA) every pair's
    block Gram and eigensolve (2 a^2 b + 4 a^3 flop, a <= b the pair's widths; SVCCA's top directions
    are at most as wide) at ``rate / PAIR_SLOWDOWN``."""
    if measure not in MATRIX_MEASURES:
        raise ValueError(f"argument 'measure' must be one of {MATRIX_MEASURES}, got {measure!r}")
    w = np.asarray(widths, dtype=np.float64)
    gemm = GEMM_OVERHEAD * n_samples * float(w.sum()) ** 2 / rate
    if measure == "cka":
        return gemm
    upper = np.triu_indices(len(w), 1)
    a, b = np.minimum.outer(w, w)[upper], np.maximum.outer(w, w)[upper]
    return gemm + float((2 * a * a * b + 4 * a ** 3).sum()) * PAIR_SLOWDOWN / rate


def _cka_distances(kd: Tensor, k1: Tensor, frob2: np.ndarray, n: int) -> np.ndarray:
    """1 - debiased linear CKA from ||X_i^T X_j||_F^2 and the per-model statistics kd = diag(X_i X_i^T) and
    k1 = X_i (X_i^T 1) - kd, a column [n] per model (see the module docstring)."""
    trace = frob2 - (kd.t() @ kd).numpy()
    s1 = k1.sum(0).numpy()
    hsic = (trace + np.outer(s1, s1) / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (k1.t() @ k1).numpy()) / (n * (n - 3))
    self_hsic = np.maximum(np.diag(hsic), 0.0)
    denom = np.sqrt(np.outer(self_hsic, self_hsic))
    cka = np.divide(hsic, denom, out=np.zeros_like(hsic), where=denom > 0)
    return 1.0 - cka


def representation_distances(data: Sequence, measures: Sequence[str] = MATRIX_MEASURES, progress: bool = False,
                             variance_kept: float = 0.99, distributed: bool = False) -> Dict[str, np.ndarray]:
    """CKA, SVCCA and Procrustes distances [N, N] between every pair of ``data`` (one array or tensor of
    the same samples per network) in one pass of blocked matrix products (``all_pairs``).

    Raises:
        ValueError: an unknown measure, fewer than 4 samples, different sample counts, NaN/Inf.
    """
    reps = []
    for i, x in enumerate(data):
        if not isinstance(x, Representation):
            shape = tuple(x.shape) if isinstance(x, (torch.Tensor, np.ndarray)) or is_on_disk(x) else None
            try:
                x = Representation(x if shape is not None and len(shape) in (2, 3) else as_array(x, i), variance_kept)
            except ValueError as exc:
                raise ValueError(f"argument 'data' entry {i}: {exc}") from None
        reps.append(x)
    counts = sorted({r.n for r in reps})
    if len(counts) > 1:
        raise ValueError(f"argument 'data' must hold the same samples (trials x steps) for every network with "
                         f"measures {tuple(measures)}, got sample counts {counts}; only 'dsa' compares "
                         f"networks on different trials")
    out = all_pairs(reps, measures, progress=progress, distributed=distributed)
    return {m: np.maximum(d, 0.0) for m, d in out.items()}


# -- the registry's forms of the three measures (their modules register them) -------------------------

def shared_matrix(name: str):
    """The registry's all-pairs form of ``name``: one ``representation_distances`` pass over the recording's
    hidden states for every requested measure of ``MATRIX_MEASURES``, shared through the inputs' cache."""
    def matrix(inputs) -> np.ndarray:
        names = [m for m in inputs.requested if m in MATRIX_MEASURES] or [name]
        return inputs.shared("all_pairs", lambda: representation_distances(
            inputs.recording.hidden, names, progress=inputs.progress, distributed=inputs.distributed))[name]
    return matrix


def arrays_form(name: str):
    """The registry's form of ``name`` on networks given as arrays (``pairwise_distances``)."""
    def on_arrays(data: Sequence, progress: bool = False, variance_kept: float = 0.99,
                  distributed: bool = False) -> np.ndarray:
        return representation_distances(data, (name,), progress, variance_kept, distributed)[name]
    return on_arrays


@lru_cache(maxsize=1)
def _rate() -> float:
    return gemm_rate()


def gemm_estimate(name: str):
    """The registry's time estimate of ``name`` on a recording (``estimate_seconds`` at this process's
    measured GEMM rate, measured once)."""
    def estimate(recording, rate: Optional[float] = None) -> float:
        n_samples = int(recording.hidden[0].shape[0] * recording.hidden[0].shape[1]) if recording.n_models else 0
        return estimate_seconds(name, n_samples, recording.state_sizes, rate or _rate())
    return estimate
