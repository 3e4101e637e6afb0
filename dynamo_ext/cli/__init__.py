"""The dynamo-ext command line; each command mirrors a public API call.

    dynamo-ext zoo      -> dynamo_ext.train_population
    dynamo-ext fit      -> dynamo_ext.fit
    dynamo-ext analyze  -> dynamo_ext.report.analysis.analyze + dynamo_ext.report.write_report
    dynamo-ext demo     -> dynamo_ext.demo.run_demo
    dynamo-ext fixed-points -> dynamo_ext.find_fixed_points + report.plot_fixed_points
    dynamo-ext adapt    -> dynamo_ext.uses.adaptation.compare_few_labels (adapt against training from scratch)
    dynamo-ext reparam-check -> dynamo_ext.uses.reparameterization.reparameterization_check
    dynamo-ext explore  -> dynamo_ext.explore (dynamo_ext.explorer; the [explore] extra)

Modules: ``parser`` (the commands' options; fit's from FitConfig's fields), ``commands`` (one function
per command, and the check of every output folder before any work).
"""
from __future__ import annotations

import sys
from typing import List, Optional

from .commands import COMMANDS, check_outputs
from .parser import build_parser

def _run(args) -> int:
    progress = not getattr(args, "no_progress", False)
    check_outputs(args)  # every output folder, before any work
    COMMANDS[args.command](args, progress)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (ValueError, ImportError, RuntimeError, NotImplementedError) as exc:
        print(f"dynamo-ext {args.command}: error: {exc}", file=sys.stderr)
        return 2

