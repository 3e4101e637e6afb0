"""A population on disk: models/<id>.safetensors and manifest.json (``Population.save`` / ``Population.load``).

A generated task is stored by its settings and made again on load; a user's task data is stored beside
the manifest with its checksum (``_io.write_task``). Nothing is pickled; every file is written atomically.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

from .. import _io
from .base_cnn import BaseCNN
from .base_rnn import BaseRNN
from .recording import Member
from .tasks import TASKS, TaskData, load_task

MANIFEST = "manifest.json"


def save_population(population, folder) -> Path:
    """Write models/<id>.safetensors and manifest.json (atomically) into ``folder``."""
    folder = Path(folder)
    entries = []
    for m in population.members:
        if not isinstance(m.model, (BaseRNN, BaseCNN)):
            raise ValueError(f"member {m.id!r}: only BaseRNN and BaseCNN members can be saved, got "
                             f"{type(m.model).__name__}")
        fname = f"models/{m.id}.safetensors"
        _io.write_tensors(folder / fname, m.model.state_dict(), metadata={"arch": m.arch})
        entries.append({**m.info(), "file": fname, "n_outputs": m.model.n_outputs,
                        "input_size": m.model.input_size, "train_config": m.train_config})
        if isinstance(m.model, BaseRNN):  # num_layers, alpha, nonlinearity where they differ from the default
            entries[-1].update({k: v for k, v in m.model.spec().items() if k not in entries[-1]})
        if isinstance(m.model, BaseCNN):
            entries[-1].update(family=m.model.family, seq_len=m.model.seq_len, depth=m.model.depth)
    manifest = {"format": "dynamo_ext.population/2", "task": population.task.name, "task_config": population.task.config,
                "models": entries}
    if population.is_multitask:
        manifest["tasks"] = {name: t.config for name, t in population.tasks.items()}
    # a user's task data is stored beside the manifest (a generated task is made again from its settings)
    stored = {name: _io.write_task(folder, t) for name, t in population.tasks.items() if not t.generated}
    if stored:
        manifest["task_data"] = stored
    _io.write_json(folder / MANIFEST, manifest)
    return folder


def load_population(folder, cls):
    """Read a population written by ``save`` / ``train_population`` as ``cls`` (Population).

    Raises:
        ValueError: missing folder, manifest or model file, a corrupted
            file, or a manifest path outside the folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"population folder {str(folder)!r} does not exist")
    manifest = _io.read_json(folder / MANIFEST, "population manifest")
    try:
        stored = manifest.get("task_data", {})

        def task_named(name: str, cfg: Dict) -> TaskData:
            if name in stored:  # a user's data, never replaced by a generated task of the same name
                return _io.read_task(folder, name, stored[name], cfg)
            if name not in TASKS and not name.startswith("neurogym:"):
                raise ValueError(f"population manifest {str(folder / MANIFEST)!r} names task {name!r}, which "
                                 f"is not a generated task ({', '.join(TASKS)}) and has no stored task data")
            return load_task(name, **cfg)

        task = task_named(manifest["task"], manifest.get("task_config", {}))
        tasks = {name: task_named(name, cfg) for name, cfg in manifest.get("tasks", {}).items()}
        entries = manifest["models"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"population manifest {str(folder / MANIFEST)!r} is corrupted: missing {exc}") from exc
    root = folder.resolve()
    members = []
    for e in entries:
        try:
            path = (folder / e["file"]).resolve()
            if root not in path.parents:
                raise ValueError(f"population manifest entry {e['id']!r}: file {e['file']!r} is outside "
                                 f"the population folder {str(folder)!r}")
            if e.get("family", "rnn") == "rnn":
                extra = {k: e[k] for k in ("num_layers", "alpha", "nonlinearity") if k in e}
                model = BaseRNN(e["arch"], e["input_size"], e["hidden_size"], e["n_outputs"], **extra)
            else:
                model = BaseCNN(e["family"], e["arch"], e["input_size"], e["seq_len"], e["hidden_size"],
                                e["n_outputs"], e["depth"])
            state = _io.read_tensors(path, f"model file of {e['id']!r}")
            try:
                model.load_state_dict(state)
            except RuntimeError as exc:
                raise ValueError(f"model file {str(path)!r} does not match its manifest entry: {exc}") from exc
            model.eval()
            members.append(Member(e["id"], e["arch"], e["hidden_size"], e["seed"], e["test_accuracy"], model,
                                  e.get("train_config", {}), e.get("task", "")))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"population manifest {str(folder / MANIFEST)!r} is corrupted: "
                             f"entry missing {exc}") from exc
    return cls(task, members, tasks or None)
