"""Model 1 of the paper: a 3-layer CNN over MFCC, delta and delta-delta stacked as 3 channels."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from moodscope.constants import N_QUADRANTS
from moodscope.models.blocks import ClassifierHead, ConvBranch, MoodNetwork


@dataclass
class CNNConfig:
    """Filters, pooling, hidden units and dropout are not given in the paper; these are our choices."""

    filters: tuple[int, ...] = (16, 32, 64)
    kernel_size: int = 3
    pool: bool = True
    hidden: int = 64
    dropout: float = 0.3
    n_classes: int = N_QUADRANTS

    def __post_init__(self) -> None:
        self.filters = tuple(self.filters)


class CNN(MoodNetwork):
    """``image`` (batch, 3, 13, 216) → logits (batch, 4)."""

    name = "cnn"
    image_channels = ("mfcc", "delta", "delta2")

    def __init__(self, config: CNNConfig):
        super().__init__()
        self.config = config
        self.cnn = ConvBranch(len(self.image_channels), config.filters, config.kernel_size, config.pool)
        self.head = ClassifierHead(self.cnn.out_features, config.hidden, config.n_classes, config.dropout)

    def forward(self, image: torch.Tensor | None = None, series=None, static=None) -> torch.Tensor:
        return self.head(self.cnn(image))
