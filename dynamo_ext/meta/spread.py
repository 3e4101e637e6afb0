"""FitSpread: several meta-models fitted to one population from different seeds (``fit(..., n_fits=k)``).

A single fit is one draw: its embedding, distances and clusters change with the seed. k fits on one
recording let each reading carry its spread across fits (``dynamo_ext.uses.across_fits``; docs/guide/trust.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, List

from .config import FitResult
from .rnn import MetaModel


@dataclass
class FitSpread:
    """k FitResults of one population, with seeds ``seed``, ``seed + 1``, ... in that order.

    Indexing and iteration give the FitResults; ``metas`` the meta-models; ``meta`` the first fit's
    (the one a single fit with the same seed gives).
    """

    results: List[FitResult]

    def __post_init__(self):
        if not self.results:
            raise ValueError("argument 'results' must hold at least one FitResult, got none")
        ids = [r.meta.model_ids for r in self.results]
        if any(i != ids[0] for i in ids):
            raise ValueError("argument 'results' must be fits of one population (the same model ids in "
                             "the same order)")

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, i: int) -> FitResult:
        return self.results[i]

    def __iter__(self) -> Iterator[FitResult]:
        return iter(self.results)

    @property
    def metas(self) -> List[MetaModel]:
        return [r.meta for r in self.results]

    @property
    def meta(self) -> MetaModel:
        return self.results[0].meta

    @property
    def seeds(self) -> List[int]:
        return [r.config.seed for r in self.results]

    @property
    def poorly_emulated(self) -> List[str]:
        """Ids below the quality threshold in any fit."""
        return list(dict.fromkeys(i for r in self.results for i in r.poorly_emulated))

    def __repr__(self) -> str:
        losses = [r.history.get("loss", [float("nan")])[-1] for r in self.results]
        return (f"FitSpread({len(self)} fits of {self.meta.n_models} models, seeds {self.seeds}, final loss "
                f"{min(losses):.4g}-{max(losses):.4g}, {sum(r.seconds for r in self.results):.1f} s)")


__all__ = ["FitSpread"]
