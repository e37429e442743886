"""The web app and HTTP API: ``moodscope serve``.

A FastAPI application (:func:`moodscope.server.app.create_app`) over the analysis and the mood
library: analyse an uploaded file, browse and query the library (the same calls as ``moodscope
library``), stream indexed tracks, scan folders inside configured roots; and one offline page at
``/`` (plain ES modules in ``static/``). Needs the ``web`` extra (``pip install 'moodscope[web]'``);
importing this package does not import FastAPI.
"""

from __future__ import annotations

from moodscope.server.config import ServerConfig

__all__ = ["ServerConfig"]
