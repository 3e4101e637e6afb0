"""The meta-model: one embedding-conditioned RNN that emulates a whole population.

docs/method.md, "The meta-model" (after arXiv:2302.14078), with theta_n the model embedding
of base model n (row n of the table ``theta``, shape [N, m]):
    z_0 = tanh(W_0 theta + b_0)
    z_t = cell(z_{t-1}, x_t; theta)        cell = tanh or GRU, theta entering every
                                           gate's input-side pre-activation as U theta
    yhat_t = W_y z_t + V_y theta + b_y     shared output head
    hhat^n_t = A_n z_t + c_n               per-model linear map into model n's
                                           (standardised) hidden coordinates
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from .. import ops, reference
from .._checks import check_choice, check_positive_int, check_tensor

CELLS = ("tanh", "gru")
BACKENDS = ("auto", "fused", "reference")
FUSED_CELLS = ("tanh", "gru")


class HiddenMap(nn.Module):
    """Per-model linear map A_n z + c_n into model n's standardised hidden coordinates.

    Buffers ``mean`` [d_n] and ``scale`` [] hold the standardisation of the
    base model's hidden states (htilde = (h - mean) / scale), so that
    ``to_base`` maps back into the base model's own coordinates.
    """

    def __init__(self, state_size: int, hidden_size: int):
        super().__init__()
        self.linear = nn.Linear(state_size, hidden_size)
        self.register_buffer("mean", torch.zeros(hidden_size))
        self.register_buffer("scale", torch.ones(()))

    @property
    def out_features(self) -> int:
        return int(self.linear.out_features)

    def forward(self, z: Tensor) -> Tensor:
        """Standardised prediction htilde [..., d_n] from meta states z [..., D]."""
        return self.linear(z)

    def to_base(self, z: Tensor) -> Tensor:
        """Prediction in the base model's coordinates: (A_n z + c_n) * scale + mean."""
        return self.linear(z) * self.scale + self.mean


class MetaModel(nn.Module):
    """What every meta-model shares: the model-embedding table ``theta`` [N, m], the base models' ids,
    one map per base model in ``maps`` (``out_features`` = d_n, ``to_base``), and the embedding uses
    (``resolve_theta``, ``at``, ``add_model``). Subclasses: MetaRNN, dynamo_ext.meta.cnn.MetaCNN."""

    def _init_table(self, n_models: int, embedding_dim: int, model_ids: Optional[Sequence[str]]) -> None:
        check_positive_int(n_models, "n_models")
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        self.model_ids: List[str] = list(model_ids) if model_ids is not None else [str(i) for i in range(n_models)]
        if len(self.model_ids) != n_models:
            raise ValueError(f"argument 'model_ids' must have {n_models} entries, got {len(self.model_ids)}")
        self.theta = nn.Parameter(0.1 * torch.randn(n_models, embedding_dim))

    @property
    def n_models(self) -> int:
        return int(self.theta.shape[0])

    @property
    def hidden_sizes(self) -> List[int]:
        return [mp.out_features for mp in self.maps]

    def resolve_theta(self, model_index=None, theta: Optional[Tensor] = None, batch: int = 1,
                      model_ids=None) -> Tensor:
        """Embeddings [B, m] from model positions [B] (or one int; ``model_index``) or explicit theta ([m]
        or [B, m]). ``model_ids`` is the old name of ``model_index`` (``model_ids`` are the string ids),
        kept for one release with a DeprecationWarning."""
        if model_ids is not None:
            import warnings

            warnings.warn("the keyword 'model_ids' of a meta-model's call is 'model_index' (positions; model_ids "
                          "are the string ids); the old keyword will be removed in the next release",
                          DeprecationWarning, stacklevel=3)
            model_index = model_ids if model_index is None else model_index
        model_ids = model_index
        if (model_ids is None) == (theta is None):
            raise ValueError("pass exactly one of 'model_index' and 'theta'")
        if theta is not None:
            check_tensor(theta, "theta")
            if theta.shape[-1] != self.embedding_dim or theta.dim() not in (1, 2):
                raise ValueError(f"argument 'theta' must have shape [{self.embedding_dim}] or "
                                 f"[B, {self.embedding_dim}], got {tuple(theta.shape)}")
            return theta.expand(batch, -1) if theta.dim() == 1 else theta
        if isinstance(model_ids, int):
            model_ids = torch.full((batch,), model_ids, dtype=torch.long, device=self.theta.device)
        if not isinstance(model_ids, Tensor) or model_ids.dtype != torch.long or model_ids.dim() != 1:
            raise ValueError(f"argument 'model_index' must be an int or an int64 tensor [B], got {model_ids!r}")
        if len(model_ids) and (int(model_ids.min()) < 0 or int(model_ids.max()) >= self.n_models):
            raise ValueError(f"argument 'model_index' must lie in [0, {self.n_models}), got values in "
                             f"[{int(model_ids.min())}, {int(model_ids.max())}]")
        return self.theta[model_ids]

    def _new_map(self, hidden_size: int, **kwargs) -> nn.Module:
        raise NotImplementedError

    def map_layout(self, model: nn.Module) -> Dict:
        """What ``add_model`` needs besides the hidden size to map into ``model``'s coordinates
        (MetaCNN: its ``layer_channels``)."""
        return {}

    def add_model(self, hidden_size: int, theta: Optional[Tensor] = None, model_id: Optional[str] = None,
                  **map_kwargs) -> int:
        """Append a row to the embedding table (default: the mean embedding) and a new map for a base
        model of hidden size ``hidden_size`` (MetaCNN: also ``layer_channels``); returns its index."""
        check_positive_int(hidden_size, "hidden_size")
        new_map = self._new_map(hidden_size, **map_kwargs).to(self.theta.device, self.theta.dtype)
        row = self.theta.detach().mean(0) if theta is None else theta.detach().reshape(self.embedding_dim)
        self.theta = nn.Parameter(torch.cat([self.theta.detach(), row.unsqueeze(0)]))
        self.maps.append(new_map)
        self.model_ids.append(model_id or str(self.n_models - 1))
        return self.n_models - 1

    def at(self, theta: Tensor) -> "EmbeddedModel":
        """The meta-model at a fixed embedding, as an operable network x -> yhat."""
        return EmbeddedModel(self, theta)


class MetaRNN(MetaModel):
    """DYNAMO meta-model for recurrent base models.

    Args:
        n_models: N, rows of the model-embedding table.
        input_size: I; n_outputs: C (logits or real outputs).
        hidden_sizes: d_n, the hidden-state size of each base model (len N).
        state_size: D, the meta state size (default 64).
        embedding_dim: m, the model-embedding dimension (default 2).
        cell: "gru" (default) or "tanh".
        backend: "fused" (default: the compiled op, dynamo_ext.ops),
            "reference" (eager PyTorch, dynamo_ext.reference) or "auto"
            (fused where the compiled op provides the cell).
        output_kind: "classes" (KL on softmax outputs) or "real" (MSE).
        model_ids: optional names of the N base models.
        recurrence_rank: experimental (no compiled op; measured as not keeping the base models'
            slow modes, docs/studies/linearization.md); r >= 0. With r > 0 theta also changes the recurrent weights of every gate,
            W_h(theta) = W_h + P diag(s(theta)) Q^T with P [G*D, r], Q [D, r] and s(theta) = S theta + s_0
            (``rank_p``, ``rank_q``, ``rank_map``; the low-rank hypernetwork of Vermani et al. 2025,
            arXiv:2410.05454, on this meta-model); eager only (``backend`` "reference" or "auto").

    Shapes: x [B, T, I]; ``forward`` returns meta states z [B, T, D] and
    outputs yhat [B, T, C]; parameters are float32 unless converted.

    Raises:
        ValueError: on bad sizes, an unknown cell or backend, or the fused
            backend asked for a cell it does not provide.
    """

    def __init__(self, n_models: int, input_size: int, n_outputs: int, hidden_sizes: Sequence[int],
                 state_size: int = 64, embedding_dim: int = 2, cell: str = "gru", backend: str = "fused",
                 output_kind: str = "classes", model_ids: Optional[Sequence[str]] = None,
                 recurrence_rank: int = 0):
        super().__init__()
        self._init_table(n_models, embedding_dim, model_ids)
        self.input_size = check_positive_int(input_size, "input_size")
        self.n_outputs = check_positive_int(n_outputs, "n_outputs")
        self.state_size = check_positive_int(state_size, "state_size")
        self.cell = check_choice(cell, "cell", CELLS)
        self.label = f"meta-{self.cell}"
        self.output_kind = check_choice(output_kind, "output_kind", ("classes", "real"))
        if len(hidden_sizes) != n_models:
            raise ValueError(f"argument 'hidden_sizes' must have {n_models} entries (n_models), got {len(hidden_sizes)}")
        if not isinstance(recurrence_rank, int) or recurrence_rank < 0:
            raise ValueError(f"argument 'recurrence_rank' must be an int >= 0, got {recurrence_rank!r}")
        self.recurrence_rank = recurrence_rank
        self.backend = self._resolve_backend(backend)

        D, m, G = state_size, embedding_dim, reference.gate_count(cell)
        self.init_map = nn.Linear(m, D)
        k = 1.0 / math.sqrt(D)
        self.w_ih = nn.Parameter(torch.empty(G * D, input_size).uniform_(-k, k))
        self.w_hh = nn.Parameter(torch.empty(G * D, D).uniform_(-k, k))
        self.b_ih = nn.Parameter(torch.empty(G * D).uniform_(-k, k))
        self.b_hh = nn.Parameter(torch.empty(G * D).uniform_(-k, k))
        self.cond_map = nn.Linear(m, G * D, bias=False)  # U
        self.head = nn.Linear(D, n_outputs)  # W_y, b_y
        self.head_theta = nn.Linear(m, n_outputs, bias=False)  # V_y
        self.maps = nn.ModuleList([HiddenMap(D, check_positive_int(d, "hidden_sizes")) for d in hidden_sizes])
        if recurrence_rank:
            r = recurrence_rank
            self.rank_p = nn.Parameter(torch.empty(G * D, r).uniform_(-k, k))
            self.rank_q = nn.Parameter(torch.empty(D, r).uniform_(-k, k))
            self.rank_map = nn.Linear(m, r)  # s(theta) = S theta + s_0

    def recurrent_weight(self, theta: Tensor) -> Tensor:
        """W_h(theta) [G*D, D] at one embedding theta [m]: W_h, plus P diag(s(theta)) Q^T with a
        low-rank recurrence (``recurrence_rank`` > 0)."""
        if not self.recurrence_rank:
            return self.w_hh
        s = self.rank_map(theta.reshape(1, -1).to(self.w_hh.dtype))[0]
        return self.w_hh + (self.rank_p * s) @ self.rank_q.T

    def _resolve_backend(self, backend: str) -> str:
        check_choice(backend, "backend", BACKENDS)
        if backend == "auto":
            return "fused" if self.cell in FUSED_CELLS and not self.recurrence_rank else "reference"
        if backend == "fused" and self.recurrence_rank:
            raise ValueError(f"argument 'backend' must be 'reference' or 'auto' with recurrence_rank="
                             f"{self.recurrence_rank} (the fused op has no low-rank recurrence yet), got 'fused'")
        if backend == "fused" and self.cell not in FUSED_CELLS:
            raise ValueError(f"argument 'backend': 'fused' provides cells {FUSED_CELLS}, got cell {self.cell!r}; "
                             "use backend='reference' or 'auto'")
        return backend

    def config(self) -> Dict:
        """Constructor arguments (JSON-serialisable), for checkpoints."""
        return {"n_models": self.n_models, "input_size": self.input_size, "n_outputs": self.n_outputs,
                "hidden_sizes": self.hidden_sizes, "state_size": self.state_size,
                "embedding_dim": self.embedding_dim, "cell": self.cell, "backend": self.backend,
                "output_kind": self.output_kind, "model_ids": list(self.model_ids),
                "recurrence_rank": self.recurrence_rank}

    def forward(self, x: Tensor, model_index=None, theta: Optional[Tensor] = None, *,
                model_ids=None) -> Tuple[Tensor, Tensor]:
        """Run the meta-model.

        Args:
            x: [B, T, I] inputs (dtype of the parameters).
            model_index: int64 [B] (or an int): emulate the base models at these positions
                (``model_ids[i]`` names position i; ``model_ids=`` is this keyword's deprecated name).
            theta: [m] or [B, m]: run at these embeddings instead.

        Returns:
            (z [B, T, D] meta states, yhat [B, T, C] outputs).

        Raises:
            ValueError: x of the wrong shape or dtype, positions out of range.
        """
        if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[-1] != self.input_size:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"argument 'x' must have shape [B, T, {self.input_size}], got {got}")
        if x.dtype != self.w_hh.dtype:
            raise ValueError(f"argument 'x' must have dtype {self.w_hh.dtype} (the meta-model's), got {x.dtype}")
        th = self.resolve_theta(model_index, theta, batch=x.shape[0], model_ids=model_ids)
        z0 = torch.tanh(self.init_map(th))
        cond = self.cond_map(th)
        xt = x.transpose(0, 1)
        # batch-major and contiguous: the head and each model's map then read z without a copy
        if self.recurrence_rank:
            low_rank = (self.rank_p, self.rank_q, self.rank_map(th))
            z = reference.meta_rnn_sequence(xt, z0, cond, self.w_ih, self.w_hh, self.b_ih, self.b_hh, self.cell,
                                            low_rank=low_rank)
        else:
            run = ops.meta_rnn_sequence if self.backend == "fused" else reference.meta_rnn_sequence
            z = run(xt, z0, cond, self.w_ih, self.w_hh, self.b_ih, self.b_hh, self.cell)
        z = z.transpose(0, 1).contiguous()
        y = self.head(z) + self.head_theta(th).unsqueeze(1)
        return z, y

    def _new_map(self, hidden_size: int) -> HiddenMap:
        return HiddenMap(self.state_size, hidden_size)


class EmbeddedModel(nn.Module):
    """The meta-model frozen at one embedding theta [m]: an operable network.

    ``forward(x [B, T, I]) -> yhat [B, T, C]``; ``record(x)`` gives
    (z [B, T, D], yhat). Shares the meta-model's parameters (no copy).
    """

    def __init__(self, meta: MetaModel, theta: Tensor):
        super().__init__()
        check_tensor(theta, "theta", shape=[meta.embedding_dim])
        self.meta = meta
        self.register_buffer("theta", theta.detach().clone().to(meta.theta.dtype))
        self.arch = meta.label
        self.state_size = meta.state_size
        self.input_size = meta.input_size

    def forward(self, x: Tensor) -> Tensor:
        return self.meta(x, theta=self.theta)[1]

    def record(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        return self.meta(x, theta=self.theta)


EmbeddedRNN = EmbeddedModel  # the name of earlier releases
