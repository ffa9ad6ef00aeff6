"""``colored-mnist``: an RGB dataset made deterministically from the bundled MNIST.

Each digit is drawn in a random foreground colour on a random background colour; both colours are
independent of the label (drawn from a generator seeded per part), and differ by at least 0.4 in
some channel so that every digit stays visible. Pixel = bg * (1 - m) + fg * m for the MNIST
intensity m in [0, 1]. It lets the RGB path run end to end offline on real digit shapes.
"""

from __future__ import annotations

import numpy as np
import torch

from . import mnist
from .base import DatasetInfo

INFO = DatasetInfo("colored-mnist", 10, tuple(str(i) for i in range(10)), channels=3, height=28, width=28)
_SEEDS = {"train": 20181101, "test": 20181102}
MIN_CONTRAST = 0.4  # the largest channel difference between foreground and background is at least this


def colours(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(foreground, background) colours in [0, 1], each (n, 3), a pure function of (n, seed)."""
    rng = np.random.RandomState(seed)
    fg, bg = rng.rand(n, 3), rng.rand(n, 3)
    bad = np.abs(fg - bg).max(axis=1) < MIN_CONTRAST
    while bad.any():  # redraw only the pairs too close to tell apart
        fg[bad], bg[bad] = rng.rand(int(bad.sum()), 3), rng.rand(int(bad.sum()), 3)
        bad = np.abs(fg - bg).max(axis=1) < MIN_CONTRAST
    return fg.astype(np.float32), bg.astype(np.float32)


def raw(part: str):
    x, y = mnist.raw(part)
    m = x.float() / 255.0  # (N, 1, 28, 28)
    fg, bg = (torch.from_numpy(c)[:, :, None, None] for c in colours(x.shape[0], _SEEDS[part]))
    rgb = bg * (1 - m) + fg * m  # (N, 3, 28, 28)
    return rgb.mul_(255).round_().to(torch.uint8), y
