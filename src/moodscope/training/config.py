"""Training settings as a dataclass, importable without torch (the CLI builds its --help from it)."""

from __future__ import annotations

from dataclasses import dataclass

from moodscope.constants import SEED

TASKS = ("quadrants", "va")
"""What a model learns: ``quadrants`` (4-way classification, cross-entropy) or ``va`` (valence and
arousal regression on the [-1, 1] annotation scale, mean squared error)."""


@dataclass
class TrainConfig:
    learning_rate: float = 1e-4  # the paper's
    batch_size: int = 64
    max_epochs: int = 40
    patience: int = 5
    weight_decay: float = 0.0
    seed: int = SEED
    threads: int = 2
    balance: str = "oversample"  # training part only: 'oversample', 'class-weights' or 'none'
    task: str = "quadrants"  # one of TASKS
