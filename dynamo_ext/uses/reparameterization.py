"""Function-preserving reparameterizations of base models, and the check that DYNAMO ignores them.

A change of hidden coordinates h' = M h leaves a recurrent network computing
the same function when every unit's activation commutes with M: a signed
permutation (h'_i = s_i h_{perm(i)}) for odd activations (tanh: the tanh RNN,
the GRU's candidate n, the LSTM's cell input g, a tanh CT-RNN), a permutation
for any activation, and a per-unit positive rescaling (M = diag(s), s > 0) for
positively homogeneous ones (ReLU RNNs and ReLU CT-RNNs: relu(s a) = s relu(a)).
Rows of the activation's block take M, rows of the sigmoid gates the
permutation P alone (gates stay positive), recurrent columns take M^-1, and
so do the next layer's input columns and the readout's columns. The LSTM's
cell state c transforms like h. Every layer of a stacked network gets its own M.

The meta-model's per-model maps A_n absorb such changes (docs/method.md, "The meta-model"),
so a reparameterized copy should sit next to its original in embedding space
(arXiv:2302.14078, insensitivity to reparameterization).
"""
from __future__ import annotations

import copy
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .._checks import check_choice
from ..population.base_cnn import BaseCNN
from ..population.base_rnn import BaseRNN
from ..population.population import Population
from ..population.recording import Member

ALL_KINDS = ("permute", "sign_flip", "permute_sign_flip", "rescale")
KINDS = ALL_KINDS[:3]  # the kinds of the tanh RNN, GRU and LSTM
# per architecture: the activation of each stacked gate block in PyTorch's order
_GATE_BLOCKS = {"rnn": ("tanh",), "relu_rnn": ("relu",), "gru": ("sigmoid", "sigmoid", "tanh"),
                "lstm": ("sigmoid", "sigmoid", "tanh", "sigmoid")}
# what each unit activation allows beside permutations
_ALLOWS = {"tanh": {"sign_flip"}, "relu": {"rescale"}, "softplus": set(), "gelu": set()}
RESCALE_RANGE = (0.25, 4.0)  # per-unit scales s, log-uniform in this range


def _unit_activation(model) -> str:
    """The activation of the units that carry the state: tanh (tanh RNN, GRU, LSTM), relu, the CT-RNN's,
    or a CNN's (relu, tanh, gelu)."""
    if isinstance(model, BaseCNN):
        return model.arch
    return {"relu_rnn": "relu", "ctrnn": getattr(model.rnn, "nonlinearity", "tanh")}.get(model.arch, "tanh")


def kinds_for(model) -> Tuple[str, ...]:
    """The reparameterization kinds that preserve ``model``'s function."""
    allows = _ALLOWS[_unit_activation(model)]
    return (("permute",) + (("sign_flip", "permute_sign_flip") if "sign_flip" in allows else ())
            + (("rescale",) if "rescale" in allows else ()))


def _transform(kind: str, H: int, g: torch.Generator):
    """(M, M^-1, P) for one layer of H units."""
    perm = torch.randperm(H, generator=g) if "permute" in kind else torch.arange(H)
    P = torch.zeros(H, H, dtype=torch.float64)
    P[torch.arange(H), perm] = 1.0
    if kind == "rescale":
        lo, hi = np.log(RESCALE_RANGE[0]), np.log(RESCALE_RANGE[1])
        s = torch.exp(lo + (hi - lo) * torch.rand(H, generator=g, dtype=torch.float64))
        return torch.diag(s), torch.diag(1 / s), torch.eye(H, dtype=torch.float64)
    signs = torch.ones(H, dtype=torch.float64)
    if "sign" in kind:
        signs = (torch.randint(0, 2, (H,), generator=g) * 2 - 1).double()
    M = signs[:, None] * P
    return M, M.T, P


def reparameterize(model: BaseRNN, kind: str = "permute_sign_flip", seed: int = 0) -> BaseRNN:
    """A copy of ``model`` in new hidden coordinates h' = M h that computes the same outputs.

    Args:
        model: a BaseRNN (tanh or ReLU RNN, GRU, LSTM of any depth, CT-RNN)
            or a BaseCNN (channels of every layer: permutations for every
            activation, sign flips for tanh, rescaling for ReLU).
        kind: "permute" (random permutation of hidden units), "sign_flip"
            (random signs; odd activations: tanh RNN, GRU, LSTM, tanh CT-RNN),
            "permute_sign_flip" (both), or "rescale" (per-unit scales s_i > 0,
            log-uniform in RESCALE_RANGE; positively homogeneous units: ReLU
            RNN, ReLU CT-RNN). ``kinds_for(model)`` lists the model's kinds.
        seed: the permutation's, signs' and scales' seed.

    Returns:
        A new BaseRNN whose outputs equal the original's (to rounding) and
        whose hidden states are M h per layer (for the LSTM, [M h; M c]).

    Raises:
        ValueError: a model that is not a BaseRNN, an unknown kind, or a kind
            that does not preserve this model's function (e.g. "rescale" of a
            tanh unit, "sign_flip" of a ReLU unit).
    """
    check_choice(kind, "kind", ALL_KINDS)
    if not isinstance(model, (BaseRNN, BaseCNN)):
        raise ValueError(f"argument 'model' must be a BaseRNN or BaseCNN, got {type(model).__name__}")
    if kind not in kinds_for(model):
        raise ValueError(f"argument 'kind': {kind!r} does not preserve the function of a {model.arch} with "
                         f"{_unit_activation(model)} units (per-unit rescaling needs positively homogeneous "
                         f"units such as ReLU, sign flips odd ones such as tanh); use one of {kinds_for(model)}")
    if isinstance(model, BaseCNN):
        return _reparameterize_cnn(model, kind, seed)
    H = model.hidden_size
    g = torch.Generator().manual_seed(seed)
    new = copy.deepcopy(model)
    rnn = new.rnn
    blocks_of = _GATE_BLOCKS.get(model.arch, (_unit_activation(model),))
    prev_inv = None  # the previous layer's M^-1 (its h is this layer's input)
    with torch.no_grad():
        for layer in range(model.num_layers):
            M, Minv, P = _transform(kind, H, g)
            suffix = f"_l{layer}" if model.arch != "ctrnn" else ""
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                param = getattr(rnn, name + suffix, None)
                if param is None:
                    continue
                out = []
                for act, block in zip(blocks_of, param.double().split(H, dim=0)):
                    b = (P if act == "sigmoid" else M) @ block
                    if name == "weight_hh":
                        b = b @ Minv
                    elif name == "weight_ih" and prev_inv is not None:
                        b = b @ prev_inv
                    out.append(b)
                param.copy_(torch.cat(out).to(param.dtype))
            prev_inv = Minv
        new.readout.weight.copy_((new.readout.weight.double() @ prev_inv).to(new.readout.weight.dtype))
    if hasattr(rnn, "flatten_parameters"):
        rnn.flatten_parameters()
    return new.eval()


def _reparameterize_cnn(model: BaseCNN, kind: str, seed: int) -> BaseCNN:
    """Every layer's channels h' = M h at every position: conv weights M W M_prev^-1, biases M b, and the
    readout's columns (channel-major over positions) M_last^-1."""
    g = torch.Generator().manual_seed(seed)
    new = copy.deepcopy(model)
    prev_inv = None
    with torch.no_grad():
        for conv in new.convs:
            M, Minv, _ = _transform(kind, conv.out_channels, g)
            w = torch.einsum("oa,ab...->ob...", M, conv.weight.double())
            if prev_inv is not None:
                w = torch.einsum("ob...,bi->oi...", w, prev_inv)
            conv.weight.copy_(w.to(conv.weight.dtype))
            if conv.bias is not None:
                conv.bias.copy_((M @ conv.bias.double()).to(conv.bias.dtype))
            prev_inv = Minv
        r = new.readout.weight
        C = prev_inv.shape[0]
        r3 = r.double().reshape(r.shape[0], C, -1)
        r.copy_(torch.einsum("cap,ab->cbp", r3, prev_inv).reshape(r.shape).to(r.dtype))
    return new.eval()


def with_reparameterized_copies(population: Population, kinds=ALL_KINDS, seed: int = 0) -> Population:
    """The population plus one reparameterized copy of each member (ids "<id>~<kind>"): the ``kinds``
    that preserve the member's function cycled (a permutation where none of them does)."""
    members = list(population.members)
    for i, m in enumerate(population.members):
        valid = [k for k in kinds if k in kinds_for(m.model)] or ["permute"]
        kind = valid[i % len(valid)]
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
    """For each measure: the fraction of copies ("<id>~<kind>") whose nearest neighbour is their original, and
    the distance from a copy to its original over the median distance between two originals (mean and max
    over copies: 0 for a measure blind to the reparameterization, about 1 for one that sees a new model)."""
    index = {mid: i for i, mid in enumerate(ids)}
    copies = [(i, index[mid.split("~")[0]]) for i, mid in enumerate(ids) if "~" in mid]
    if not copies:
        raise ValueError("argument 'ids' holds no reparameterized copies ('<id>~<kind>')")
    originals = sorted({o for _, o in copies})
    rows = []
    for name, d in distances.items():
        d = np.asarray(d, dtype=np.float64)
        nn_idx = nearest_neighbours(d)
        hits = [int(nn_idx[c] == o) for c, o in copies]
        between = [d[a, b] for i, a in enumerate(originals) for b in originals[i + 1:] if np.isfinite(d[a, b])]
        scale = float(np.median(between)) if between else float("nan")
        rel = [d[c, o] / scale for c, o in copies if np.isfinite(d[c, o]) and scale > 0]
        rows.append({"measure": name, "copies": len(copies), "nearest_is_original": sum(hits) / len(hits),
                     "copy_to_original_rel": float(np.mean(rel)) if rel else None,
                     "copy_to_original_rel_max": float(np.max(rel)) if rel else None,
                     "misses": [ids[c] for (c, _), h in zip(copies, hits) if not h]})
    return rows


def reparameterization_check(population: Population, fit_config: Optional[Dict] = None, seed: int = 0,
                             progress: bool = True, measures=("cka", "procrustes", "weights"),
                             kinds: Sequence[str] = ALL_KINDS) -> Dict:
    """Fit a meta-model to the population plus a reparameterized copy of each member and check that
    every copy's nearest neighbour in embedding space is its original (and the same for baselines).

    Args:
        population: the originals.
        fit_config: keyword settings for ``dynamo_ext.fit`` (steps, ...); by
            default the fit ends with 300 steps of ``fit.refine_embeddings``
            (phi frozen, full batch), which lets functionally identical models
            settle at the same embedding instead of where minibatch noise left them.
        measures: baseline measures (dynamo_ext.compare) to check beside DYNAMO.
        kinds: the reparameterizations to cycle through (each member gets one
            that preserves its function: ``kinds_for``).

    Returns:
        {"rows": one per measure ("dynamo" first) with the fraction of copies
        whose nearest neighbour is their original and the misses,
        "embedding": {id: theta}}.
    """
    from ..compare.distances import distance_matrices
    from ..meta.fitting import fit

    both = with_reparameterized_copies(population, kinds=kinds, seed=seed)
    settings = {"seed": seed, "refine_steps": 300, "refine_sequences": 32, **(fit_config or {})}
    result = fit(both, progress=progress, **settings)
    dists = distance_matrices(both, measures=("dynamo", *measures), meta=result.meta)
    return {"rows": copy_check(both.ids, dists),
            "embedding": dict(zip(both.ids, result.meta.theta.detach().double().tolist()))}
