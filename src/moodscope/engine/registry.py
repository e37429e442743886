"""The engines by name: ``--engine local`` and ``--engine ray``."""

from __future__ import annotations

import contextlib

from moodscope.engine.base import ENGINES, Engine
from moodscope.errors import MoodscopeError


def open_engine(name: str = "local", *, workers: int | None = None, address: str | None = None) -> Engine:
    """The engine called ``name``: ``'local'`` (``workers`` processes, default all cores) or
    ``'ray'`` (the cluster at ``address``, or a Ray instance started on this machine's cores)."""
    if name == "local":
        if address is not None:
            raise MoodscopeError("--address is for the ray engine; add --engine ray")
        from moodscope.engine.local import LocalEngine

        return LocalEngine(workers=workers)
    if name == "ray":
        from moodscope.engine.ray_engine import RayEngine

        return RayEngine(address=address, workers=workers)
    raise MoodscopeError(f"unknown engine {name!r}; give one of {', '.join(ENGINES)}")


def engine_scope(engine: Engine | str, *, workers: int | None = None, address: str | None = None):
    """A context giving the engine to use: ``engine`` itself (left open: its owner closes it) or the
    engine named ``engine``, opened for the ``with`` block and closed after it."""
    if isinstance(engine, Engine):
        return contextlib.nullcontext(engine)
    return open_engine(engine, workers=workers, address=address)
