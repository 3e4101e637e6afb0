"""The meta-model side of DYNAMO: the meta-RNN and meta-CNN, the loss, fitting and checkpoints.

docs/method.md, after arXiv:2302.14078 section 2: one meta-model whose
model embedding theta_n selects which base model n it emulates, fitted
jointly with theta and the hidden maps A_n on every model's recording.

Modules: ``rnn`` (MetaRNN, the hidden maps), ``cnn`` (MetaCNN), ``config``
(FitConfig, FitResult), ``loss`` and ``hidden_loss`` (the DYNAMO loss),
``fitting`` (fit, refinement of embeddings), ``loop`` (the training loop), ``optim``
(its Adam), ``packed`` (the maps in one table while a fit runs, row-sparse Adam),
``probes`` (the inputs a population is recorded on), ``budget`` (the memory
budget of a recording, the emulation check after a fit), ``checkpoint``
(save / load, resumable fitting), ``distributed`` (torch.distributed data
parallelism), ``evaluate`` (how well the meta-model emulates each model).
"""
from .rnn import BACKENDS, CELLS, FUSED_CELLS, EmbeddedModel, HiddenMap, MetaModel, MetaRNN
from .cnn import CNNMap, MetaCNN
from .config import FitConfig, FitResult
from .loss import ModelRows, Targets, dynamo_loss
from .optim import TouchedAdam, make_optimizer
from .probes import relax_steps, relaxing_probes
from .budget import check_quality, recording_bytes
from .loop import train_loop
from .packed import PackedMaps
from .fitting import fit, refine_embeddings
from .checkpoint import (CHECKPOINT, META_CONFIG, META_WEIGHTS, load_history, load_meta, load_training_state,
                         save_meta, save_training_state)

__all__ = [
    "BACKENDS", "CELLS", "CHECKPOINT", "CNNMap", "EmbeddedModel", "FUSED_CELLS", "FitConfig", "FitResult",
    "HiddenMap", "META_CONFIG", "META_WEIGHTS", "MetaCNN", "MetaModel", "MetaRNN", "ModelRows", "PackedMaps", "Targets",
    "TouchedAdam", "check_quality", "dynamo_loss", "fit", "load_history", "load_meta", "load_training_state", "make_optimizer",
    "recording_bytes", "refine_embeddings", "relax_steps", "relaxing_probes", "save_meta", "save_training_state", "train_loop",
]
