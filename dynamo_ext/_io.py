"""Atomic, pickle-free storage: safetensors for tensors, JSON for the rest.

Every write goes to a temporary file in the destination folder and is moved
into place with os.replace, so a crash never leaves a half-written file.
Every read turns a missing or corrupted file into an error naming it.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Sequence

import torch
from safetensors import SafetensorError
from safetensors import safe_open
from safetensors.torch import load_file, save_file


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call write(tmp) on a temporary file beside path, then move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions of a new file
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def check_output_folder(path, name: str, results: Sequence[str] = (), resume: bool = False,
                        overwrite: bool = False) -> Path:
    """Refuse, before any work, an output folder that cannot take a run's results.

    Raises:
        ValueError (naming the argument ``name`` and the path): ``path`` is an existing file, lies under
        a file, or under a folder this process cannot write; or it holds any of ``results`` (another
        run's) and neither ``resume`` nor ``overwrite`` is set.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"argument '{name}' must be a folder, got the existing file {str(path)!r}")
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"argument '{name}' {str(path)!r} cannot be created: {str(ancestor)!r} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"argument '{name}' {str(path)!r} cannot be written: no write permission on "
                         f"{str(ancestor)!r}")
    held = [r for r in results if (path / r).exists()]
    if held and not (resume or overwrite):
        raise ValueError(f"argument '{name}' {str(path)!r} already holds another run's results ({', '.join(held)}): "
                         f"continue it (resume), replace them (overwrite), or choose another folder")
    return path


def write_json(path, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=False)
            f.write("\n")
    atomic_write(Path(path), write)


def write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    atomic_write(Path(path), write)


def write_tensors(path, tensors: Dict[str, torch.Tensor], metadata: Dict[str, str] | None = None) -> None:
    """Write a dict of tensors as safetensors to ``path`` atomically."""
    clean = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write(Path(path), lambda tmp: save_file(clean, tmp, metadata=metadata))


def read_json(path, what: str = "file") -> Any:
    """Read JSON; a missing or unparsable file raises a ValueError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} {str(path)!r} does not exist")
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{what} {str(path)!r} is corrupted: not valid JSON ({exc})") from exc


def read_tensors(path, what: str = "file") -> Dict[str, torch.Tensor]:
    """Read safetensors; a missing or corrupted file raises a ValueError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{what} {str(path)!r} does not exist")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{what} {str(path)!r} is corrupted: not a readable safetensors file ({exc})") from exc


def read_metadata(path, what: str = "file") -> Dict[str, str]:
    """The string metadata of a safetensors file (ValueError naming the file if unreadable)."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{what} {str(path)!r} is corrupted: not a readable safetensors file ({exc})") from exc


TASK_FIELDS = ("x_train", "y_train", "x_test", "y_test")


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_task(folder, task) -> Dict[str, Any]:
    """Store a user's TaskData as ``tasks/<name>.safetensors`` in ``folder`` (atomically); returns
    the manifest entry (file, sha256 of the file, output_kind, n_outputs)."""
    import re

    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", task.name)
    fname = f"tasks/{safe}.safetensors"
    path = Path(folder) / fname
    write_tensors(path, {k: getattr(task, k) for k in TASK_FIELDS}, metadata={"name": task.name})
    return {"file": fname, "sha256": _sha256(path), "output_kind": task.output_kind, "n_outputs": task.n_outputs}


def read_task(folder, name: str, entry: Dict[str, Any], config: Dict[str, Any]):
    """The TaskData stored by ``write_task``; a missing file, or one whose contents do not match
    the manifest's checksum, is refused (never replaced by other data)."""
    from .population.tasks import TaskData

    folder = Path(folder)
    try:
        path = (folder / entry["file"]).resolve()
        digest, kind, n_outputs = entry["sha256"], entry["output_kind"], entry["n_outputs"]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"population manifest in {str(folder)!r}: task data entry of {name!r} is corrupted "
                         f"(missing {exc})") from exc
    if folder.resolve() not in path.parents:
        raise ValueError(f"population manifest in {str(folder)!r}: task data of {name!r} points outside the folder")
    if not path.is_file():
        raise ValueError(f"task data of {name!r} is missing: {str(path)!r} (the population was saved with it; "
                         "copy the whole population folder)")
    if _sha256(path) != digest:
        raise ValueError(f"task data of {name!r} in {str(path)!r} does not match the manifest's checksum: "
                         "the file was changed or replaced after the population was saved")
    t = read_tensors(path, f"task data of {name!r}")
    missing = [k for k in TASK_FIELDS if k not in t]
    if missing:
        raise ValueError(f"task data of {name!r} in {str(path)!r} lacks {missing}")
    return TaskData(name, t["x_train"], t["y_train"], t["x_test"], t["y_test"], kind, n_outputs, dict(config))
