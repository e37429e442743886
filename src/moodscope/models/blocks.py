"""Building blocks shared by the paper's three models: a CNN branch, an LSTM branch, a DNN branch
and the dense head they all feed.

Every branch maps a batch to a flat vector ``(batch, out_features)`` so the models are just
"run the branches, concatenate, classify". Shapes follow PyTorch's channels-first convention:
images are ``(batch, channels, N_MFCC, N_FRAMES)``, series ``(batch, N_FRAMES, n_series)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


class ConvBranch(nn.Module):
    """``len(filters)`` blocks of 3×3 convolution → batch norm → ReLU (→ 2×2 max-pooling), then
    global average pooling: ``(batch, in_channels, 13, 216)`` → ``(batch, filters[-1])``.

    Pooling stops halving an axis once it is down to 1 (13 MFCC rows → 6 → 3 → 1).
    """

    def __init__(self, in_channels: int, filters: Sequence[int], kernel_size: int = 3, pool: bool = True):
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for width in filters:
            layers += [
                nn.Conv2d(channels, width, kernel_size, padding=kernel_size // 2, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            if pool:
                layers.append(nn.MaxPool2d(2, ceil_mode=False))
            channels = width
        self.body = nn.Sequential(*layers)
        self.out_features = channels

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.body(image).mean(dim=(-2, -1))


class SeriesLSTM(nn.Module):
    """A stacked LSTM over frame-level series: ``(batch, t, n_inputs)`` → ``(batch, units)``
    (the last layer's final hidden state). ``stride`` > 1 average-pools the series in time first,
    which shortens the recurrence (and the training time) by that factor.
    """

    def __init__(self, n_inputs: int, units: int = 64, layers: int = 2, dropout: float = 0.0, stride: int = 1):
        super().__init__()
        self.stride = stride
        self.lstm = nn.LSTM(n_inputs, units, num_layers=layers, batch_first=True, dropout=dropout if layers > 1 else 0)
        self.out_features = units

    def forward(self, series: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            series = nn.functional.avg_pool1d(series.transpose(1, 2), self.stride, ceil_mode=True).transpose(1, 2)
        _, (hidden, _) = self.lstm(series)
        return hidden[-1]


class DenseBranch(nn.Module):
    """A small fully connected network (ReLU) over a flat feature vector."""

    def __init__(self, n_inputs: int, units: Sequence[int]):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_inputs
        for u in units:
            layers += [nn.Linear(width, u), nn.ReLU(inplace=True)]
            width = u
        self.body = nn.Sequential(*layers)
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ClassifierHead(nn.Module):
    """The paper's "3-layer neural network with 1 hidden layer": input → hidden (ReLU, dropout) → 4 logits.

    It returns logits; the softmax of the paper's output layer is applied by the loss
    (``cross_entropy`` takes logits, which is numerically safer) and by ``predict_proba``.
    """

    def __init__(self, n_inputs: int, hidden: int, n_classes: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(n_inputs, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class MoodNetwork(nn.Module):
    """Base class of the paper's networks (a torch module; what ``analyze`` runs is a
    :class:`moodscope.analysis.pretrained.MoodModel`): declares which inputs a network reads.

    ``image_channels``: feature names stacked as image channels (from ``mfcc``, ``delta``, ``delta2``);
    ``series_names``: frame series fed to the LSTM (names of ``SERIES_NAMES``), empty for none;
    ``uses_static``: whether the ten static features are an input.
    """

    name: str = ""
    config: Any  # the architecture's config dataclass
    image_channels: tuple[str, ...] = ()
    series_names: tuple[str, ...] = ()
    uses_static: bool = False

    def forward(
        self,
        image: torch.Tensor | None = None,
        series: torch.Tensor | None = None,
        static: torch.Tensor | None = None,
    ) -> torch.Tensor:
        raise NotImplementedError
