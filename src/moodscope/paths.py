"""Where moodscope keeps things: shipped files inside the package, the feature cache in the user's cache.

Only the standard library is imported here, so the command line can show these defaults in its
``--help`` without loading numpy.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent

WEIGHTS_DIR = PACKAGE_DIR / "weights"
"""The shipped model weights, found relative to the code (nothing is ever downloaded)."""

DEMO_CLIP = PACKAGE_DIR / "data" / "demo.ogg"
"""The bundled demo clip ('March Thee to Dis' by Max McCracken, CC BY-SA 3.0)."""


def default_cache_dir() -> Path:
    """The feature cache: ``$MOODSCOPE_CACHE``, else ``$XDG_CACHE_HOME/moodscope/features``
    (``~/.cache/moodscope/features``; ``%LOCALAPPDATA%\\moodscope\\cache\\features`` on Windows)."""
    env = os.environ.get("MOODSCOPE_CACHE")
    if env:
        return Path(env).expanduser()
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "moodscope" / "cache" / "features"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "moodscope" / "features"
