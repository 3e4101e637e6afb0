"""Checkpoints: a fitted meta-model saved and loaded (save_meta / load_meta), and resumable fitting.

``save_meta`` writes the meta-model's weights (safetensors) and its settings
(JSON) into a folder; ``load_meta`` builds it again from them.

Resumable fitting: the whole training state in one safetensors file, written atomically.

``checkpoint.safetensors`` beside a fitted meta-model holds the meta-model's
weights, Adam's moment estimates, the minibatch generator's state, and (as
JSON strings in the file's metadata) the step, the loss history, the
scheduler's state and the settings. One file, replaced atomically, so that a
process killed at any moment leaves either the previous checkpoint or the new
one; nothing is unpickled when it is read.
"""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Dict, List, Optional, Union

import torch

from .. import _io
from .cnn import MetaCNN
from .config import FitConfig
from .rnn import MetaModel, MetaRNN

CHECKPOINT = "checkpoint.safetensors"
FORMAT = "dynamo_ext.fit_checkpoint/1"
META_WEIGHTS = "meta.safetensors"
META_CONFIG = "meta.json"


def save_training_state(path, meta: torch.nn.Module, opt: torch.optim.Optimizer, sched, generator: torch.Generator,
                        step: int, history: Dict[str, List[float]], settings: Dict) -> None:
    """Write the training state after ``step`` completed steps to ``path`` atomically."""
    # cloned: while a fit runs the maps are views of one table (packed.PackedMaps), which safetensors refuses
    tensors = {f"meta.{k}": v.detach().clone() for k, v in meta.state_dict().items()}
    opt_state = opt.state_dict()
    for i, state in opt_state["state"].items():
        for name, value in state.items():
            tensors[f"opt.{i}.{name}"] = value if isinstance(value, torch.Tensor) else torch.tensor(value)
    tensors["generator"] = generator.get_state()
    metadata = {"format": FORMAT, "step": str(step), "history": json.dumps(history),
                "param_groups": json.dumps(opt_state["param_groups"]),
                "scheduler": json.dumps(sched.state_dict()), "settings": json.dumps(settings, sort_keys=True)}
    _io.write_tensors(path, tensors, metadata=metadata)


def load_training_state(path, meta: torch.nn.Module, opt: torch.optim.Optimizer, sched, generator: torch.Generator,
                        settings: Dict) -> Optional[Dict]:
    """Restore a state written by ``save_training_state`` into the given objects.

    Returns:
        {"step": completed steps, "history": loss history}, or None when
        ``path`` does not exist.

    Raises:
        ValueError: a corrupted file, or one written with other settings
            (the differing settings are named).
    """
    path = Path(path)
    if not path.is_file():
        return None
    what = "fit checkpoint"
    meta_data = _io.read_metadata(path, what)
    if meta_data.get("format") != FORMAT:
        raise ValueError(f"{what} {str(path)!r} is not a dynamo_ext fit checkpoint (format "
                         f"{meta_data.get('format')!r})")
    saved = json.loads(meta_data["settings"])
    differ = sorted(k for k in set(saved) | set(settings) if saved.get(k) != settings.get(k))
    if differ:
        raise ValueError(f"{what} {str(path)!r} was written with other settings: "
                         + ", ".join(f"{k}={saved.get(k)!r} (now {settings.get(k)!r})" for k in differ)
                         + "; delete it or fit into another folder")
    tensors = _io.read_tensors(path, what)
    try:
        meta.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("meta.")})
        state: Dict[int, Dict] = {}
        for key, value in tensors.items():
            if key.startswith("opt."):
                _, i, name = key.split(".", 2)
                state.setdefault(int(i), {})[name] = value
        opt.load_state_dict({"state": state, "param_groups": json.loads(meta_data["param_groups"])})
        sched.load_state_dict(json.loads(meta_data["scheduler"]))
        generator.set_state(tensors["generator"])
        return {"step": int(meta_data["step"]), "history": json.loads(meta_data["history"])}
    except (KeyError, RuntimeError, ValueError) as exc:
        raise ValueError(f"{what} {str(path)!r} is corrupted or does not match the population: {exc}") from exc


def known_settings(overrides: Dict) -> Dict:
    names = {f.name for f in fields(FitConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise ValueError(f"unknown fit settings {unknown}; known: {sorted(names)}")
    return overrides


def save_meta(meta: MetaModel, folder: Union[str, Path], history: Optional[Dict] = None,
              fit_config: Optional[Dict] = None) -> Path:
    """Save a meta-model: meta.safetensors (weights) + meta.json (config, history), each atomically."""
    folder = Path(folder)
    _io.write_tensors(folder / META_WEIGHTS, meta.state_dict())
    _io.write_json(folder / META_CONFIG, {"format": "dynamo_ext.meta/1", "config": meta.config(),
                                          "dtype": str(meta.theta.dtype).replace("torch.", ""),
                                          "fit_config": fit_config or {}, "history": history or {}})
    return folder


def load_meta(folder: Union[str, Path]) -> MetaModel:
    """Load a meta-model saved by ``save_meta`` / ``fit(out=...)``.

    Raises:
        ValueError: missing folder or file, corrupted JSON or safetensors,
            weights that do not match the config.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"meta-model folder {str(folder)!r} does not exist")
    info = _io.read_json(folder / META_CONFIG, "meta-model config")
    try:
        config = dict(info["config"])
        cls = MetaCNN if config.pop("kind", "rnn") == "cnn" else MetaRNN
        meta = cls(**config).to(getattr(torch, info.get("dtype", "float32")))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"meta-model config {str(folder / META_CONFIG)!r} is corrupted: {exc}") from exc
    state = _io.read_tensors(folder / META_WEIGHTS, "meta-model weights")
    try:
        meta.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"meta-model weights {str(folder / META_WEIGHTS)!r} do not match "
                         f"{str(folder / META_CONFIG)!r}: {exc}") from exc
    meta.eval()
    return meta


def load_history(folder: Union[str, Path]) -> Dict[str, List[float]]:
    """The loss history stored beside a saved meta-model."""
    return _io.read_json(Path(folder) / META_CONFIG, "meta-model config").get("history", {})
