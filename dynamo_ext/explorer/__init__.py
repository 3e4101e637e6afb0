"""An explorer of the model embedding space: click a point, see the dynamics there (the ``[explore]`` extra, Dash).

``de.explore(meta, population)`` (inline in Jupyter, else a local server) and ``dynamo-ext explore POP
META``. Modules: ``model`` (``Explorer``: what a click computes, with the package's own API, cached
per theta; no web framework), ``figures`` (plotly), ``panels`` (the page's numbers and figures),
``app`` (the Dash app). docs/guide/explorer.md shows it.
"""
from __future__ import annotations

import socket
from typing import Optional

from .model import Explorer

DEFAULT_PORT = 8050


def check_port(host: str, port: int) -> None:
    """Raise ValueError, naming it, when ``port`` on ``host`` cannot be served (in use, or not a port)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError(f"argument 'port' must be an integer in 1..65535, got {port!r}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ValueError(f"argument 'port': {host}:{port} cannot be served ({exc.strerror or exc}); "
                             f"choose another with --port") from None


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def explore(meta, population, port: int = DEFAULT_PORT, host: str = "127.0.0.1", mode: Optional[str] = None,
            run: bool = True, **explorer_kwargs):
    """Explore a fitted meta-model's embedding space in the browser.

    Args:
        meta: a fitted MetaRNN; population: the Population it was fitted to.
        port, host: where to serve (default 127.0.0.1:8050, this machine only).
        mode: "inline" (in a Jupyter notebook; the default there) or "server" (the default elsewhere:
            blocks until interrupted).
        run: False returns the Dash app without serving it.
        explorer_kwargs: ``Explorer``'s settings (n_probes, n_inits, seed, labels).

    Returns:
        The Dash app.

    Raises:
        ImportError: Dash missing (``pip install "dynamo_ext[explore]"``).
        ValueError: a meta-model fitted to other models or not a MetaRNN, a port in use: before any
            server starts.
    """
    try:
        import dash  # noqa: F401
    except ImportError as exc:
        raise ImportError('the explorer needs Dash, the [explore] extra: pip install "dynamo_ext[explore]"') from exc
    from .app import make_app

    explorer = Explorer(meta, population, **explorer_kwargs)
    app = make_app(explorer)
    if run:
        mode = mode or ("inline" if _in_notebook() else "server")
        if mode not in ("inline", "server"):
            raise ValueError(f"argument 'mode' must be 'inline' or 'server', got {mode!r}")
        check_port(host, port)
        if mode == "inline":
            app.run(jupyter_mode="inline", host=host, port=port, debug=False)
        else:
            print(f"DYNAMO explorer on http://{host}:{port} (Ctrl-C stops it)")
            app.run(host=host, port=port, debug=False)
    return app


__all__ = ["DEFAULT_PORT", "Explorer", "check_port", "explore"]
