"""Analysis: the mood of a track with a shipped or trained model — a timeline of 5-s segments and a summary.

:func:`analyze` runs one file or array through a model loaded by :func:`load_model` (the shipped
``accurate`` and ``fast`` models of :mod:`~moodscope.analysis.pretrained` and
:mod:`~moodscope.analysis.accurate`, or a checkpoint); :mod:`~moodscope.analysis.timeline` plots
the result; :mod:`~moodscope.analysis.shipped` retrains the shipped models (``train --shipped``).
Batches of files run on an engine (:mod:`moodscope.engine`).
"""

from __future__ import annotations

from moodscope.analysis.analyzer import Analysis, Summary, analyze
from moodscope.analysis.pretrained import load_model

__all__ = ["Analysis", "Summary", "analyze", "load_model"]
