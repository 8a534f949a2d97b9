"""The per-user cache directory fastbp keeps its files in (MNIST, compiled kernels)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def user_cache(name: str, windows: bool | None = None) -> Path:
    """``name`` under fastbp's per-user cache directory: ``$XDG_CACHE_HOME/fastbp``, else
    ``~/.cache/fastbp`` (``%LOCALAPPDATA%\\fastbp`` on Windows; ``windows`` says which
    platform's rule, by default this one's)."""
    if sys.platform == "win32" if windows is None else windows:
        local = os.environ.get("LOCALAPPDATA")
        base = Path(local) if local else Path.home() / "AppData" / "Local"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        # The XDG specification says relative paths are to be ignored.
        base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "fastbp" / name
