"""Argument checks shared by the public API: each error names the argument,
what was expected and what was received."""
from __future__ import annotations

import numbers
from typing import Iterable, Sequence

import torch
from torch import Tensor


def check_tensor(value, name: str, *, ndim: int | None = None, shape: Sequence[int | None] | None = None,
                 dtypes: Iterable[torch.dtype] | None = None, finite: bool = True) -> Tensor:
    """Validate a tensor argument and return it.

    ``shape`` entries of None match any size. Raises ValueError naming ``name``.
    """
    if not isinstance(value, Tensor):
        raise ValueError(f"argument '{name}' must be a torch.Tensor, got {type(value).__name__}")
    if ndim is not None and value.dim() != ndim:
        raise ValueError(f"argument '{name}' must have {ndim} dimensions, got shape {tuple(value.shape)}")
    if shape is not None:
        ok = value.dim() == len(shape) and all(s is None or s == v for s, v in zip(shape, value.shape))
        if not ok:
            want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
            raise ValueError(f"argument '{name}' must have shape {want}, got {tuple(value.shape)}")
    if dtypes is not None:
        dtypes = tuple(dtypes)
        if value.dtype not in dtypes:
            raise ValueError(f"argument '{name}' must have dtype in {dtypes}, got {value.dtype}")
    if finite and value.is_floating_point() and not bool(torch.isfinite(value).all()):
        bad = int((~torch.isfinite(value)).sum())
        raise ValueError(f"argument '{name}' must be finite, got {bad} NaN or Inf entries")
    return value


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """``value`` as an int (NumPy integers accepted) if it is an integer >= ``minimum``; else ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"argument '{name}' must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive_float(value, name: str, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"argument '{name}' must be a number, got {value!r}") from None
    if not (v > 0 or (allow_zero and v == 0)) or v != v or v == float("inf"):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"argument '{name}' must be a finite number {bound}, got {value!r}")
    return v


def check_choice(value, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"argument '{name}' must be one of {tuple(choices)}, got {value!r}")
    return value


def renamed_keyword(new_value, old_value, new: str, old: str, function: str, stacklevel: int = 3):
    """The value of a keyword under its new name, or under its old one with a DeprecationWarning (kept for
    one release).

    Raises:
        TypeError: both names given.
    """
    if old_value is None:
        return new_value
    if new_value is not None:
        raise TypeError(f"{function}() got both '{new}' and its old name '{old}'; pass '{new}' only")
    import warnings

    warnings.warn(f"{function}(): the keyword '{old}' is '{new}' (scikit-learn's name); the old keyword will be "
                  f"removed in the next release", DeprecationWarning, stacklevel=stacklevel)
    return old_value
