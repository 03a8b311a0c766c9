"""A small CNN image classifier: three conv blocks, global average pooling, a linear head."""

from __future__ import annotations

import torch
from torch import nn

from training.config import ModelConfig


def _block(in_channels: int, out_channels: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),  # BatchNorm supplies the bias
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class ImageCNN(nn.Module):
    """Conv-BN-ReLU-MaxPool x 2, Conv-BN-ReLU, global average pooling, dropout, linear.

    Global average pooling makes the head independent of the input size: any H, W >= 4 works (two 2x poolings).
    The ONNX export fixes H and W to the example's and keeps the batch axis dynamic.

    Args:
        config: Reads ``image_channels`` (of the input images: 1 for greyscale, 3 for RGB), ``channels`` (of the
            first block; the second and third double them) and ``dropout`` (before the head).
        num_classes: Number of output logits.
    """

    def __init__(self, config: ModelConfig, num_classes: int):
        super().__init__()
        in_channels, channels = config.image_channels, config.channels
        self.features = nn.Sequential(
            _block(in_channels, channels, pool=True),
            _block(channels, 2 * channels, pool=True),
            _block(2 * channels, 4 * channels, pool=False),
        )
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(4 * channels, num_classes)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of images.

        Args:
            pixels: (B, C, H, W) float32 in [0, 1].

        Returns:
            (B, num_classes) float32 logits.
        """
        x = self.features(pixels)  # (B, 4K, H/4, W/4)
        pooled = x.mean(dim=(2, 3))  # (B, 4K)
        return self.head(self.dropout(pooled))  # (B, num_classes)
