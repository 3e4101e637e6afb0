"""Function-preserving reparameterizations of base models, and the check that DYNAMO ignores them.

A change of hidden coordinates h' = M h with M a signed permutation
(h'_i = s_i h_{perm(i)}) leaves a tanh RNN, GRU or LSTM computing the same
function: rows of the tanh blocks (the RNN's state, the GRU's candidate n, the
LSTM's cell input g) take M, rows of the sigmoid gates take the permutation P
alone (gates stay positive), recurrent columns take M^T, and the readout
W_y M^T. The LSTM's cell state c transforms like h. Per-unit rescaling is
function-preserving only for positively homogeneous units (ReLU), which these
architectures do not have.

The meta-model's per-model maps A_n absorb such changes (DESIGN.md section 1),
so a reparameterized copy should sit next to its original in embedding space
(arXiv:2302.14078, insensitivity to reparameterization).
"""
from __future__ import annotations

import copy
from typing import Dict, List, Optional

import numpy as np
import torch

from ._checks import check_choice
from .zoo import BaseRNN, Member, Population

KINDS = ("permute", "sign_flip", "permute_sign_flip")
# per architecture: the activation of each stacked gate block in PyTorch's order
_GATE_BLOCKS = {"rnn": ("tanh",), "gru": ("sigmoid", "sigmoid", "tanh"),
                "lstm": ("sigmoid", "sigmoid", "tanh", "sigmoid")}


def reparameterize(model: BaseRNN, kind: str = "permute_sign_flip", seed: int = 0) -> BaseRNN:
    """A copy of ``model`` in new hidden coordinates h' = M h that computes the same outputs.

    Args:
        model: a BaseRNN (tanh RNN, GRU or LSTM).
        kind: "permute" (random permutation of hidden units), "sign_flip"
            (random signs) or "permute_sign_flip" (both).
        seed: the permutation's and signs' seed.

    Returns:
        A new BaseRNN whose outputs equal the original's (to rounding) and
        whose hidden states are M h (for the LSTM, [M h; M c]).

    Raises:
        ValueError: a model that is not a BaseRNN, or an unknown kind
            (including "rescale": not function-preserving for these units).
    """
    if kind == "rescale":
        raise ValueError("argument 'kind': per-unit rescaling preserves the function only for ReLU units; "
                         f"tanh RNN, GRU and LSTM units are not homogeneous; use one of {KINDS}")
    check_choice(kind, "kind", KINDS)
    if not isinstance(model, BaseRNN):
        raise ValueError(f"argument 'model' must be a BaseRNN, got {type(model).__name__}")
    H = model.hidden_size
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(H, generator=g) if "permute" in kind else torch.arange(H)
    signs = torch.ones(H, dtype=torch.float64)
    if "sign" in kind:
        signs = (torch.randint(0, 2, (H,), generator=g) * 2 - 1).double()
    P = torch.zeros(H, H, dtype=torch.float64)
    P[torch.arange(H), perm] = 1.0
    M = signs[:, None] * P
    new = copy.deepcopy(model)
    rnn = new.rnn
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            param = getattr(rnn, name, None)
            if param is None:
                continue
            blocks = param.double().split(H, dim=0)
            out = []
            for act, block in zip(_GATE_BLOCKS[model.arch], blocks):
                R = M if act == "tanh" else P
                b = R @ block
                if name == "weight_hh_l0":
                    b = b @ M.T
                out.append(b)
            param.copy_(torch.cat(out).to(param.dtype))
        new.readout.weight.copy_((new.readout.weight.double() @ M.T).to(new.readout.weight.dtype))
    if hasattr(rnn, "flatten_parameters"):
        rnn.flatten_parameters()
    return new.eval()


def with_reparameterized_copies(population: Population, kinds=KINDS, seed: int = 0) -> Population:
    """The population plus one reparameterized copy of each member (kinds cycled), ids "<id>~<kind>"."""
    members = list(population.members)
    for i, m in enumerate(population.members):
        kind = kinds[i % len(kinds)]
        copy_model = reparameterize(m.model, kind, seed=seed + i)
        members.append(Member(f"{m.id}~{kind}", m.arch, m.hidden_size, m.seed, m.test_accuracy, copy_model,
                              dict(m.train_config), m.task))
    return Population(population.task, members, population.tasks if population.is_multitask else None)


def nearest_neighbours(distances: np.ndarray) -> np.ndarray:
    """Index of each model's nearest other model under a [N, N] distance matrix (NaN: never nearest)."""
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"argument 'distances' must be a square matrix, got shape {d.shape}")
    d = np.where(np.isnan(d), np.inf, d)
    np.fill_diagonal(d, np.inf)
    return d.argmin(1)


def copy_check(ids: List[str], distances: Dict[str, np.ndarray]) -> List[Dict]:
    """For each measure: the fraction of copies ("<id>~<kind>") whose nearest neighbour is their original."""
    index = {mid: i for i, mid in enumerate(ids)}
    copies = [(i, index[mid.split("~")[0]]) for i, mid in enumerate(ids) if "~" in mid]
    if not copies:
        raise ValueError("argument 'ids' holds no reparameterized copies ('<id>~<kind>')")
    rows = []
    for name, d in distances.items():
        nn_idx = nearest_neighbours(d)
        hits = [int(nn_idx[c] == o) for c, o in copies]
        rows.append({"measure": name, "copies": len(copies), "nearest_is_original": sum(hits) / len(hits),
                     "misses": [ids[c] for (c, _), h in zip(copies, hits) if not h]})
    return rows


def reparameterization_check(population: Population, fit_config: Optional[Dict] = None, seed: int = 0,
                             progress: bool = True, measures=("cka", "procrustes", "weights")) -> Dict:
    """Fit a meta-model to the population plus a reparameterized copy of each member and check that
    every copy's nearest neighbour in embedding space is its original (and the same for baselines).

    Args:
        population: the originals.
        fit_config: keyword settings for ``dynamo_ext.fit`` (steps, ...); by
            default the fit ends with 300 steps of ``fit.refine_embeddings``
            (phi frozen, full batch), which lets functionally identical models
            settle at the same embedding instead of where minibatch noise left them.
        measures: baseline measures (dynamo_ext.baselines) to check beside DYNAMO.

    Returns:
        {"rows": one per measure ("dynamo" first) with the fraction of copies
        whose nearest neighbour is their original and the misses,
        "embedding": {id: theta}}.
    """
    from .baselines import distance_matrices
    from .cluster import embedding_distances
    from .fit import fit

    both = with_reparameterized_copies(population, seed=seed)
    settings = {"seed": seed, "refine_steps": 300, "refine_sequences": 32, **(fit_config or {})}
    result = fit(both, progress=progress, **settings)
    dists = {"dynamo": embedding_distances(result.meta), **distance_matrices(both, measures=measures)}
    return {"rows": copy_check(both.ids, dists),
            "embedding": dict(zip(both.ids, result.meta.theta.detach().double().tolist()))}
