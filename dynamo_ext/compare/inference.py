"""Tests on distance matrices: do groups of networks differ, and do two measures agree?

The ecology and RSA habits, on any [N, N] distance matrix (DYNAMO's theta and functional readings,
CKA, Procrustes, SVCCA, ...), so that one table shows which measure finds which difference:

- PERMANOVA (Anderson 2001, Austral Ecology 26:32-46): the pseudo-F of a grouping,
  F = (SS_A / (g - 1)) / (SS_W / (N - g)), with SS_T = sum_{i<j} d_ij^2 / N, SS_W = sum over groups of
  sum_{i<j in the group} d_ij^2 / n_group and SS_A = SS_T - SS_W; its p-value by permuting the group
  labels (within ``strata`` when given); the effect size R^2 = SS_A / SS_T (vegan's adonis2).
- PERMDISP (Anderson 2006, Biometrics 62:245-253), with group centroids: each network's distance to
  its group's centroid in the space the distances embed in (principal coordinates, negative
  eigenvalues counted as imaginary axes), computed from the distances themselves,
  z_i^2 = sum_{j in g} d_ij^2 / n_g - sum_{j,k in g} d_jk^2 / (2 n_g^2), then the one-way ANOVA F of z
  across groups, with the same permutations. PERMANOVA also rejects when groups differ in spread
  only; PERMDISP tells the two apart.
- The Mantel test (Mantel 1967): the correlation (Pearson, or Spearman on ranks) of the upper
  triangles of two distance matrices, its p-value by permuting the rows and columns of the first.

The permutations follow scikit-bio's (``skbio.stats.distance.permanova``, ``permdisp``, ``mantel``):
``numpy.random.default_rng(seed)``, then one ``rng.permutation`` of the label codes (or of the N
indices, for Mantel) per permutation, and p = (1 + #{stat_perm >= stat}) / (1 + n_permutations). On
the same matrix and seed the p-values equal scikit-bio's (``tests/test_inference.py``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .._checks import check_choice, check_positive_int

CHUNK = 512  # permutations evaluated together (one [CHUNK, N, g] product)
# a permuted statistic counts as "at least as large" down to this relative tolerance (vegan's habit), so
# that a permutation giving the same partition in another summation order is counted whatever the rounding
TIE = 1e-9


def check_distance_matrix(distances, name: str = "distances", tol: float = 1e-4) -> np.ndarray:
    """``distances`` as a float64 [N, N] array, checked: square, finite, non-negative, symmetric and with
    a zero diagonal (to ``tol`` relative to its largest entry). Raises ValueError naming ``name``."""
    d = np.asarray(distances.detach().cpu() if hasattr(distances, "detach") else distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1] or d.shape[0] < 2:
        raise ValueError(f"argument '{name}' must be a square [N, N] distance matrix with N >= 2, "
                         f"got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError(f"argument '{name}' must be finite, got {int((~np.isfinite(d)).sum())} NaN or Inf "
                         "entries (a measure undefined for some pairs cannot be tested)")
    scale = max(float(np.abs(d).max()), 1e-300)
    if (d < -tol * scale).any():
        raise ValueError(f"argument '{name}' must be non-negative, got a minimum of {float(d.min()):.3g}")
    if np.abs(d - d.T).max() > tol * scale or np.abs(np.diag(d)).max() > tol * scale:
        raise ValueError(f"argument '{name}' must be symmetric with a zero diagonal, got an asymmetry of "
                         f"{float(np.abs(d - d.T).max()):.3g} and a largest diagonal entry of "
                         f"{float(np.abs(np.diag(d)).max()):.3g}")
    d = 0.5 * (d + d.T)
    np.fill_diagonal(d, 0.0)
    return d


def _codes(labels, n: int, name: str) -> Tuple[np.ndarray, List]:
    values = list(np.asarray(labels.detach().cpu() if hasattr(labels, "detach") else labels, dtype=object).reshape(-1))
    if len(values) != n:
        raise ValueError(f"argument '{name}' must give one label per network ({n}), got {len(values)}")
    names = list(dict.fromkeys(values))  # first-appearance order
    index = {v: i for i, v in enumerate(names)}
    return np.array([index[v] for v in values], dtype=np.int64), names


def _label_permutations(codes: np.ndarray, strata: Optional[np.ndarray], n_permutations: int,
                        rng: np.random.Generator) -> np.ndarray:
    """[n_permutations, N] permuted label codes: scikit-bio's ``rng.permutation(codes)`` per row, or the
    labels shuffled within each stratum."""
    out = np.empty((n_permutations, len(codes)), dtype=np.int64)
    blocks = None if strata is None else [np.flatnonzero(strata == s) for s in np.unique(strata)]
    for i in range(n_permutations):
        if blocks is None:
            out[i] = rng.permutation(codes)
        else:
            row = codes.copy()
            for b in blocks:
                row[b] = codes[b][rng.permutation(len(b))]
            out[i] = row
    return out


def _group_statistics(d2: np.ndarray, labels: np.ndarray, n_groups: int) -> Tuple[np.ndarray, np.ndarray,
                                                                                     np.ndarray]:
    """(pseudo-F [B], R^2 [B], PERMDISP F [B]) of B label vectors [B, N] on squared distances d2 [N, N]."""
    B, N = labels.shape
    onehot = np.zeros((B, N, n_groups))
    np.put_along_axis(onehot, labels[..., None], 1.0, axis=-1)
    sizes = onehot.sum(1)  # [B, g]
    to_group = d2 @ onehot  # [B, N, g]: sum over the group's members of d_ij^2
    within = np.einsum("bng,bng->bg", onehot, to_group)  # sum over ordered pairs in the group
    ss_t = d2.sum() / (2 * N)
    ss_w = (within / (2 * sizes)).sum(-1)
    ss_a = ss_t - ss_w
    with np.errstate(divide="ignore", invalid="ignore"):
        pseudo_f = (ss_a / (n_groups - 1)) / (ss_w / (N - n_groups))
        r2 = ss_a / ss_t
        own = np.take_along_axis(to_group, labels[..., None], -1)[..., 0]  # [B, N]
        n_own = np.take_along_axis(sizes, labels, -1)
        w_own = np.take_along_axis(within, labels, -1)
        z = np.sqrt(np.clip(own / n_own - w_own / (2 * n_own ** 2), 0.0, None))
        means = np.einsum("bng,bn->bg", onehot, z) / sizes
        grand = z.mean(-1, keepdims=True)
        between = (sizes * (means - grand) ** 2).sum(-1) / (n_groups - 1)
        resid = z - np.take_along_axis(means, labels, -1)
        within_z = (resid ** 2).sum(-1) / (N - n_groups)
        dispersion_f = between / within_z
    return pseudo_f, r2, dispersion_f


@dataclass
class GroupTest:
    """The answer of ``group_test``: PERMANOVA and PERMDISP of one grouping on one distance matrix.

    Attributes:
        pseudo_f, p_value: PERMANOVA's pseudo-F and its permutation p-value.
        r2: the share of the distances' total sum of squares that the grouping explains (effect size).
        dispersion_f, dispersion_p_value: PERMDISP's F (distances to the group centroids) and p-value.
        n, groups, group_sizes: the networks, the group labels in first-appearance order, their sizes.
        n_permutations, permuted, seed: how the p-values were made ("labels" or "labels within strata").
        measure: the distance measure's name, when given.
        mean_distances: the mean distance within each group and between each pair ("a|b").
        per_fit_p_values: for a consensus of several meta-model fits (``DYNAMO(n_fits=k).group_test``),
            each fit's own p-value; else None.
    """

    pseudo_f: float
    p_value: float
    r2: float
    dispersion_f: float
    dispersion_p_value: float
    n: int
    groups: List
    group_sizes: List[int]
    n_permutations: int
    permuted: str
    seed: Optional[int]
    measure: Optional[str] = None
    mean_distances: Dict[str, float] = field(default_factory=dict, repr=False)
    per_fit_p_values: Optional[List[float]] = None

    def as_dict(self) -> Dict:
        """The fields as JSON-ready Python values (groups as strings)."""
        out = asdict(self)
        out["groups"] = [str(g) for g in self.groups]
        return out

    def __repr__(self) -> str:
        name = f"{self.measure}: " if self.measure else ""
        fits = ("" if not self.per_fit_p_values else
                f" (per fit p {min(self.per_fit_p_values):.4g}-{max(self.per_fit_p_values):.4g})")
        return (f"GroupTest({name}PERMANOVA F={self.pseudo_f:.3g}, p={self.p_value:.4g}{fits}, R2={self.r2:.3f}; "
                f"PERMDISP F={self.dispersion_f:.3g}, p={self.dispersion_p_value:.4g}; "
                f"{len(self.groups)} groups of {self.group_sizes}, {self.n_permutations} permutations of "
                f"{self.permuted})")


def group_test(distances, labels: Sequence, *, strata: Optional[Sequence] = None, n_permutations: int = 9999,
               seed: Optional[int] = 0, measure: Optional[str] = None) -> GroupTest:
    """Do the groups of ``labels`` differ on ``distances``? PERMANOVA with PERMDISP beside it.

    Args:
        distances: [N, N] distances between networks (NumPy array or tensor; any measure).
        labels: N group labels (any hashable values), at least 2 groups, N greater than the number of groups.
        strata: N block labels; the group labels are then permuted within each block only (for example:
            is architecture a difference within each task?).
        n_permutations: label permutations for the p-values (p >= 1 / (n_permutations + 1)).
        seed: seeds ``numpy.random.default_rng``; the same seed gives the same permutations (and, without
            strata, the permutations of scikit-bio's ``permanova`` and ``permdisp``).
        measure: a name kept on the result (for tables).

    Returns:
        GroupTest (pseudo-F, p-value, R^2, PERMDISP F and p-value).

    Raises:
        ValueError: a matrix that is not a finite, symmetric, non-negative distance matrix with a zero
            diagonal; labels or strata of the wrong length; fewer than 2 groups, or as many as networks.

    Source: Anderson (2001) for PERMANOVA, Anderson (2006) for PERMDISP; the module docstring gives the
    formulas.
    """
    d = check_distance_matrix(distances)
    n = d.shape[0]
    codes, names = _codes(labels, n, "labels")
    g = len(names)
    if not 2 <= g < n:
        raise ValueError(f"argument 'labels' must name at least 2 groups and fewer groups than networks ({n}), "
                         f"got {g}")
    check_positive_int(n_permutations, "n_permutations", minimum=0)
    strata_codes = None if strata is None else _codes(strata, n, "strata")[0]
    rng = np.random.default_rng(seed)
    d2 = d ** 2
    f0, r2, disp0 = (float(v[0]) for v in _group_statistics(d2, codes[None], g))
    above_f = above_disp = 0
    perms = _label_permutations(codes, strata_codes, n_permutations, rng)
    for start in range(0, n_permutations, CHUNK):
        f, _, disp = _group_statistics(d2, perms[start:start + CHUNK], g)
        above_f += int((f >= f0 - TIE * abs(f0)).sum())
        above_disp += int((disp >= disp0 - TIE * abs(disp0)).sum())
    p = (above_f + 1) / (n_permutations + 1) if n_permutations else float("nan")
    p_disp = (above_disp + 1) / (n_permutations + 1) if n_permutations else float("nan")
    sizes = np.bincount(codes, minlength=g).tolist()
    means = {}
    for a in range(g):
        for b in range(a, g):
            block = d[np.ix_(codes == a, codes == b)]
            vals = block[np.triu_indices(len(block), 1)] if a == b else block.reshape(-1)
            if vals.size:
                means[f"{names[a]}|{names[b]}"] = float(vals.mean())
    return GroupTest(f0, p, r2, disp0, p_disp, n, names, sizes, int(n_permutations),
                     "labels" if strata is None else "labels within strata", seed, measure, means)


@dataclass
class MantelTest:
    """The answer of ``mantel``: the correlation of two distance matrices' upper triangles and its
    permutation p-value."""

    statistic: float
    p_value: float
    n: int
    method: str
    alternative: str
    n_permutations: int
    seed: Optional[int]

    def as_dict(self) -> Dict:
        return asdict(self)

    def __repr__(self) -> str:
        return (f"MantelTest({self.method} r={self.statistic:.3f}, p={self.p_value:.4g} ({self.alternative}), "
                f"N={self.n}, {self.n_permutations} permutations)")


def _ranks(values: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(values)


def mantel(d1, d2, *, method: str = "spearman", n_permutations: int = 9999, alternative: str = "two-sided",
           seed: Optional[int] = 0) -> MantelTest:
    """Do two distance matrices over the same N networks agree? The Mantel test.

    Args:
        d1, d2: [N, N] distance matrices (N >= 3), rows in the same order.
        method: "spearman" (default: ranks, for measures on different scales) or "pearson".
        n_permutations: permutations of the rows and columns of ``d1``.
        alternative: "two-sided" (|r_perm| >= |r|), "greater" or "less".
        seed: seeds ``numpy.random.default_rng``; as scikit-bio's ``mantel`` on the same seed.

    Returns:
        MantelTest (statistic r, p-value).

    Raises:
        ValueError: matrices that are not distance matrices or differ in size, N < 3, an unknown method or
            alternative.
    """
    a, b = check_distance_matrix(d1, "d1"), check_distance_matrix(d2, "d2")
    if a.shape != b.shape:
        raise ValueError(f"arguments 'd1' and 'd2' must have the same shape, got {a.shape} and {b.shape}")
    check_choice(method, "method", ("spearman", "pearson"))
    check_choice(alternative, "alternative", ("two-sided", "greater", "less"))
    check_positive_int(n_permutations, "n_permutations", minimum=0)
    n = a.shape[0]
    if n < 3:
        raise ValueError(f"arguments 'd1' and 'd2' must cover at least 3 networks, got {n}")
    iu = np.triu_indices(n, 1)
    if method == "spearman":
        a_full, b_full = np.zeros_like(a), np.zeros_like(b)
        a_full[iu], b_full[iu] = _ranks(a[iu]), _ranks(b[iu])
        a, b = a_full + a_full.T, b_full + b_full.T
    y = b[iu] - b[iu].mean()
    y /= np.linalg.norm(y)

    def corr(rows: np.ndarray) -> np.ndarray:  # rows [B, N] permutations of the indices
        x = a[rows[:, :, None], rows[:, None, :]][:, iu[0], iu[1]]
        x = x - x.mean(-1, keepdims=True)
        return (x @ y) / np.linalg.norm(x, axis=-1)

    r0 = float(corr(np.arange(n)[None])[0])
    rng = np.random.default_rng(seed)
    perms = np.stack([rng.permutation(n) for _ in range(n_permutations)]) if n_permutations else np.zeros((0, n), int)
    count = 0
    for start in range(0, n_permutations, CHUNK):
        r = corr(perms[start:start + CHUNK])
        tie = TIE * abs(r0)
        count += int((np.abs(r) >= abs(r0) - tie).sum() if alternative == "two-sided"
                     else (r >= r0 - tie).sum() if alternative == "greater" else (r <= r0 + tie).sum())
    p = (count + 1) / (n_permutations + 1) if n_permutations else float("nan")
    return MantelTest(r0, p, n, method, alternative, int(n_permutations), seed)


__all__ = ["GroupTest", "MantelTest", "check_distance_matrix", "group_test", "mantel"]
