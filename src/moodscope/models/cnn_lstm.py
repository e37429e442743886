"""Model 2 of the paper: a CNN over MFCC + delta in parallel with a 2-layer LSTM over the five series."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from moodscope.constants import N_QUADRANTS, SERIES_NAMES
from moodscope.models.blocks import ClassifierHead, ConvBranch, MoodNetwork, SeriesLSTM


@dataclass
class CNNLSTMConfig:
    """The paper gives 3 conv layers with max-pooling and 2 LSTM layers; the widths are our choices."""

    filters: tuple[int, ...] = (16, 32, 64)
    kernel_size: int = 3
    lstm_units: int = 64
    lstm_layers: int = 2
    series_stride: int = 4  # our choice: the LSTM reads 54 means of 4 frames (~93 ms); 1 = all 216 frames, ~6x slower
    hidden: int = 64
    dropout: float = 0.3
    n_classes: int = N_QUADRANTS

    def __post_init__(self) -> None:
        self.filters = tuple(self.filters)


class CNNLSTM(MoodNetwork):
    """``image`` (batch, 2, 13, 216) and ``series`` (batch, 216, 5) → logits (batch, 4)."""

    name = "cnn-lstm"
    image_channels = ("mfcc", "delta")
    series_names = SERIES_NAMES

    def __init__(self, config: CNNLSTMConfig):
        super().__init__()
        self.config = config
        self.cnn = ConvBranch(len(self.image_channels), config.filters, config.kernel_size, pool=True)
        self.lstm = SeriesLSTM(
            len(self.series_names), config.lstm_units, config.lstm_layers, stride=config.series_stride
        )
        width = self.cnn.out_features + self.lstm.out_features
        self.head = ClassifierHead(width, config.hidden, config.n_classes, config.dropout)

    def forward(self, image: torch.Tensor | None = None, series: torch.Tensor | None = None, static=None):
        return self.head(torch.cat([self.cnn(image), self.lstm(series)], dim=1))
