"""Loading of the compiled ops (dynamo_ext._C) with an actionable error."""
from __future__ import annotations

import torch

REBUILD_COMMAND = "pip install --no-build-isolation --force-reinstall --no-deps ."


def load_extension():
    """Import dynamo_ext._C, which registers torch.ops.dynamo_ext.*.

    Returns:
        The _C module (attributes TORCH_VERSION: str, WITH_CUDA: int).

    Raises:
        ImportError: if _C is missing, fails to load, or was built against a
            torch other than the one imported; the message names the rebuild
            command.
    """
    try:
        from . import _C  # noqa: F401  (registers the ops)
    except (ImportError, OSError) as exc:
        raise ImportError(
            "dynamo_ext: the compiled extension dynamo_ext._C could not be loaded "
            f"({exc}). Rebuild it against the installed torch {torch.__version__} from the "
            f"source tree with: {REBUILD_COMMAND} (or, to use the source tree itself, with "
            f"{REBUILD_COMMAND.replace(' .', ' -e .')}); a source tree without a built _C "
            "shadows an installed package when Python runs from inside it"
        ) from exc
    built = getattr(_C, "TORCH_VERSION", "unknown")
    if built != torch.__version__:
        raise ImportError(
            f"dynamo_ext: dynamo_ext._C was built against torch {built}, but torch "
            f"{torch.__version__} is installed. Rebuild it from the source tree with: {REBUILD_COMMAND}"
        )
    return _C


def cuda_kernels_registered() -> bool:
    """True when the CUDA kernels of every dynamo_ext op are registered."""
    names = ("dynamo_ext::meta_rnn_sequence", "dynamo_ext::meta_rnn_sequence_backward",
             "dynamo_ext::newton_fixed_points", "dynamo_ext::row_adam_", "dynamo_ext::hidden_map_loss",
             "dynamo_ext::hidden_map_loss_backward")
    return all(torch._C._dispatch_has_kernel_for_dispatch_key(n, "CUDA") for n in names)
