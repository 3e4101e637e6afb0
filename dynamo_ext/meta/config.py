"""The settings of a DYNAMO fit (FitConfig) and what a fit returns (FitResult).

Every weight, step count and learning rate of the loss and the optimiser of
docs/method.md ("The loss") / arXiv:2302.14078 section 2 is a FitConfig field.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch

from .._checks import check_choice, check_positive_float, check_positive_int
from .rnn import BACKENDS, CELLS, MetaModel


@dataclass
class FitConfig:
    """Settings of ``fit``; every field can also be passed to ``fit`` as a keyword."""

    state_size: int = 64
    embedding_dim: int = 2
    cell: str = "gru"
    backend: str = "fused"
    # experimental (no compiled op; measured as not keeping the base models' slow modes,
    # docs/studies/linearization.md): rank r of the embedding-conditioned recurrence W_h(theta) = W_h + P diag(s(theta)) Q^T of a meta-RNN
    # (MetaRNN); 0: theta enters additively only (U theta). r > 0 runs the eager reference (backend
    # "reference" or "auto"): no compiled op provides it yet
    recurrence_rank: int = 0
    steps: int = 2000
    batch_size: int = 128
    lr: float = 1e-2
    lambda_h: float = 1.0
    lambda_y: float = 1.0
    lambda_theta: float = 1e-3
    max_sequences: Optional[int] = 2000
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"  # "cpu", "cuda" or "cuda:<index>"
    checkpoint_every: int = 0  # with fit(out=...): save the training state every this many steps (0: never)
    refine_steps: int = 0  # after fitting: steps of refine_embeddings (0: none)
    refine_sequences: int = 64
    refine_lr: float = 1e-2
    # steps of weak input (relax_noise) appended to every probe sequence of a Population of RNNs before
    # it is recorded, so that the base models relax onto their attractors while recorded
    # (docs/guide/fixed-points.md);
    # None: one probe length for tasks with outputs at every step (the pulse tasks), 0 for tasks
    # read at the last step (MNIST-1D, digits); 0: the task's inputs only
    relax_steps: Optional[int] = None
    # standard deviation of Gaussian input noise during those steps (0: exact silence): the base models
    # fluctuate about their attractors, which shows the meta-model their contraction (the Jacobian)
    relax_noise: float = 0.15
    # a Population whose recording (float32 hidden states plus their standardised copy) would take more
    # than this many GiB of memory is recorded to disk, one model at a time, and streamed from there
    # batch by batch (dynamo_ext.population.streaming); None: always in memory
    memory_budget_gb: Optional[float] = 4.0
    # where that streamed recording goes (default: a temporary folder, removed after the fit)
    recording_dir: Optional[str] = None
    # a streamed recording takes at most this many GiB of disk: past it, fewer probe sequences are
    # recorded per model (at least MIN_STREAMED_SEQUENCES, dynamo_ext.meta.budget), said in one line;
    # the per-model quality check after the fit says whether each model is still emulated well;
    # None: every probe sequence, whatever the disk
    disk_budget_gb: Optional[float] = 32.0
    # how the recording's hidden states are kept, in memory or on disk: "float32", or "float16" (half
    # the memory and disk; the standardised targets to about 3 significant digits)
    recording_dtype: str = "float32"
    # after the fit (a Population only): per-model emulation on the task's held-out inputs
    # (dynamo_ext.meta.evaluate.emulation); members with hidden R^2 below this are named
    # (FitResult.poorly_emulated); None: no check
    quality_threshold: Optional[float] = 0.9

    def validate(self) -> "FitConfig":
        check_positive_int(self.state_size, "state_size")
        check_positive_int(self.embedding_dim, "embedding_dim")
        check_choice(self.cell, "cell", CELLS)
        check_choice(self.backend, "backend", BACKENDS)
        if not isinstance(self.recurrence_rank, int) or self.recurrence_rank < 0:
            raise ValueError(f"argument 'recurrence_rank' must be an int >= 0, got {self.recurrence_rank!r}")
        if self.recurrence_rank and self.backend == "fused":
            raise ValueError(f"argument 'backend' must be 'reference' or 'auto' with recurrence_rank="
                             f"{self.recurrence_rank} (the fused op has no low-rank recurrence yet), got 'fused'")
        check_positive_int(self.steps, "steps")
        check_positive_int(self.batch_size, "batch_size")
        check_positive_float(self.lr, "lr")
        for name in ("lambda_h", "lambda_y", "lambda_theta"):
            check_positive_float(getattr(self, name), name, allow_zero=True)
        if self.max_sequences is not None:
            check_positive_int(self.max_sequences, "max_sequences")
        check_choice(self.dtype, "dtype", ("float32", "float64"))
        if not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"argument 'device' must be 'cpu', 'cuda' or 'cuda:<index>', got {self.device!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"argument 'device' is {self.device!r} but no CUDA device is available")
        check_positive_int(self.refine_steps, "refine_steps", minimum=0)
        check_positive_int(self.checkpoint_every, "checkpoint_every", minimum=0)
        check_positive_int(self.refine_sequences, "refine_sequences")
        check_positive_float(self.refine_lr, "refine_lr")
        if self.relax_steps is not None:
            check_positive_int(self.relax_steps, "relax_steps", minimum=0)
        check_positive_float(self.relax_noise, "relax_noise", allow_zero=True)
        check_choice(self.recording_dtype, "recording_dtype", ("float32", "float16"))
        if self.memory_budget_gb is not None:
            check_positive_float(self.memory_budget_gb, "memory_budget_gb")
        if self.disk_budget_gb is not None:
            check_positive_float(self.disk_budget_gb, "disk_budget_gb")
        if self.quality_threshold is not None and (
                not isinstance(self.quality_threshold, (int, float)) or not self.quality_threshold <= 1):
            raise ValueError(f"argument 'quality_threshold' must be a number <= 1 (a hidden R^2), "
                             f"got {self.quality_threshold!r}")
        return self


@dataclass
class FitResult:
    """What ``fit`` returns: the meta-model, its loss history and settings.

    ``history`` maps "loss", "loss_h", "loss_y", "loss_theta" to one float per step.
    ``extra["emulation"]`` (a fit of a Population with ``quality_threshold`` set): per base model
    the held-out emulation rows of ``dynamo_ext.meta.evaluate.emulation``; ``poorly_emulated``
    names the members whose hidden R^2 is below the threshold. ``extra["streamed_recording"]``:
    where a recording over the memory budget was streamed from.
    """

    meta: MetaModel
    history: Dict[str, List[float]]
    config: FitConfig
    seconds: float = 0.0
    extra: Dict = field(default_factory=dict)

    @property
    def poorly_emulated(self) -> List[str]:
        """Ids of the base models whose held-out hidden R^2 is below ``config.quality_threshold``
        (empty where the check did not run)."""
        return list(self.extra.get("poorly_emulated", []))

    def __repr__(self) -> str:
        loss = self.history.get("loss") or [float("nan")]
        return (f"FitResult(meta={type(self.meta).__name__}(n_models={self.meta.n_models}, "
                f"embedding_dim={self.meta.embedding_dim}), steps={len(self.history.get('loss', []))}, "
                f"final_loss={loss[-1]:.4g}, seconds={self.seconds:.1f})")
