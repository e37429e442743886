"""Training settings as a dataclass and the choices they take, importable without numpy or torch (the CLI
builds its --help from them)."""

from __future__ import annotations

from dataclasses import dataclass

from moodscope.constants import SEED

PROTOCOLS = ("song", "paper")
"""How a dataset is split (:mod:`moodscope.training.protocols`): by song/artist (default) or the paper's way."""

BALANCES = ("oversample", "class-weights", "none")
"""Class balancing of the training part: random oversampling, a weighted loss, or nothing."""

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
    balance: str = "oversample"  # training part only: one of BALANCES
    task: str = "quadrants"  # one of TASKS
