"""The fixed train / validation split carved from a dataset's official training part."""

from __future__ import annotations

import numpy as np
import torch

SPLITS = ("train", "val", "train-full", "test")
DEFAULT_VAL_SIZE = 5000
_VAL_SEED = 20180601  # fixed: the validation hold-out must never change between runs


def default_val_size(n_train: int) -> int:
    """5,000 held-out images (as for MNIST) when the training part has 25,000 or more, else 10 %."""
    return DEFAULT_VAL_SIZE if n_train >= 5 * DEFAULT_VAL_SIZE else max(1, n_train // 10)


def split_indices(n: int, split: str, val_size: int) -> torch.Tensor:
    """Indices of ``split`` ('train' or 'val') among the ``n`` images of the training part."""
    if not 0 < val_size < n:
        raise ValueError(f"val_size must lie between 1 and {n - 1} for a training part of {n} images, got {val_size}")
    perm = torch.from_numpy(np.random.RandomState(_VAL_SEED).permutation(n))
    return perm[:val_size] if split == "val" else perm[val_size:]
