"""Model 3 of the paper: CNN over MFCC, LSTM over RMS and zero-crossing rate, DNN over the 10 static features."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from moodscope.constants import N_QUADRANTS, N_STATIC
from moodscope.models.blocks import ClassifierHead, ConvBranch, DenseBranch, MoodNetwork, SeriesLSTM


@dataclass
class HybridConfig:
    """CNN and LSTM as in Model 2 (the paper: "the internal architecture ... was the same as model 2");
    the DNN width is our choice."""

    filters: tuple[int, ...] = (16, 32, 64)
    kernel_size: int = 3
    lstm_units: int = 64
    lstm_layers: int = 2
    series_stride: int = 4  # our choice: the LSTM reads 54 means of 4 frames (~93 ms); 1 = all 216 frames, ~6x slower
    static_units: tuple[int, ...] = (32, 32)
    hidden: int = 64
    dropout: float = 0.3
    n_classes: int = N_QUADRANTS

    def __post_init__(self) -> None:
        self.filters = tuple(self.filters)
        self.static_units = tuple(self.static_units)


class Hybrid(MoodNetwork):
    """``image`` (batch, 1, 13, 216), ``series`` (batch, 216, 2) and ``static`` (batch, 10) → logits (batch, 4)."""

    name = "hybrid"
    image_channels = ("mfcc",)
    series_names = ("rms", "zero_crossing_rate")
    uses_static = True

    def __init__(self, config: HybridConfig):
        super().__init__()
        self.config = config
        self.cnn = ConvBranch(len(self.image_channels), config.filters, config.kernel_size, pool=True)
        self.lstm = SeriesLSTM(
            len(self.series_names), config.lstm_units, config.lstm_layers, stride=config.series_stride
        )
        self.dnn = DenseBranch(N_STATIC, config.static_units)
        width = self.cnn.out_features + self.lstm.out_features + self.dnn.out_features
        self.head = ClassifierHead(width, config.hidden, config.n_classes, config.dropout)

    def forward(self, image: torch.Tensor | None = None, series=None, static=None) -> torch.Tensor:
        return self.head(torch.cat([self.cnn(image), self.lstm(series), self.dnn(static)], dim=1))
