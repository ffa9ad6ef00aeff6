"""Datasets as tensors, one dataset per module (torchvision's layout).

Names: ``mnist`` (bundled), ``fashion-mnist``, ``emnist-letters``, ``cifar10``, ``svhn``,
``colored-mnist`` (RGB, made from the bundled MNIST), ``idx:PATH`` (a folder of MNIST-format IDX
files) and ``folder:PATH`` (ImageFolder layout, PNG/JPEG).

``load_dataset(name, split)`` returns ``(x, y)``: x float32 (N, C, H, W) in [0, 1], y int64.
Splits: ``train`` (training part minus the validation hold-out), ``val`` (a fixed hold-out of the
training part, for thresholds and model selection), ``train-full`` and ``test``.
``dataset_info(name)`` gives its shape and classes, ``pixel_stats(name)`` the per-channel mean and
std of its official training part (which the model stores, so the normalisation travels with the weights).
"""

from __future__ import annotations

import os
from functools import lru_cache

import torch

from . import cifar10, colored_mnist, emnist, fashion_mnist, folder, mnist, svhn
from .base import DataError, DatasetInfo, default_data_dir
from .idx import idx_folder_raw, read_idx
from .splits import DEFAULT_VAL_SIZE, SPLITS, default_val_size, split_indices

NAMED = {"mnist": mnist, "fashion-mnist": fashion_mnist, "emnist-letters": emnist, "cifar10": cifar10,
         "svhn": svhn, "colored-mnist": colored_mnist}
PREFIXED = ("idx:", "folder:")

__all__ = ["DEFAULT_VAL_SIZE", "DataError", "DatasetInfo", "NAMED", "SPLITS", "check_name", "dataset_info", "default_data_dir",
           "list_datasets", "load_dataset", "pixel_stats", "read_idx"]


def list_datasets() -> list[str]:
    return [*NAMED, "idx:PATH", "folder:PATH"]


def check_name(name) -> str:
    """``name`` if it names a dataset, else a ValueError listing the names."""
    if not isinstance(name, str) or not (name in NAMED or name.startswith(PREFIXED) and len(name.split(":", 1)[1]) > 0):
        raise ValueError(f"unknown dataset {name!r}; use one of {', '.join(list_datasets())}")
    return name


def _key(data_dir) -> str | None:
    return None if data_dir is None else str(data_dir)


@lru_cache(maxsize=8)
def _raw(name: str, part: str, data_dir: str | None, download: bool):
    """uint8 images (N, C, H, W) and int64 labels of one official part ('train' or 'test')."""
    check_name(name)
    if name.startswith("idx:"):
        return idx_folder_raw(name[4:], part)
    if name.startswith("folder:"):
        return folder.raw(name[7:], part)
    module = NAMED[name]
    if module in (mnist, colored_mnist):
        return module.raw(part)
    return module.raw(part, data_dir, download)


def dataset_info(name: str, data_dir: str | os.PathLike | None = None, download: bool = False) -> DatasetInfo:
    """Shape, class count and class names (idx:PATH: shape and count from its training files)."""
    check_name(name)
    if name in NAMED:
        return NAMED[name].INFO
    if name.startswith("folder:"):
        return folder.info(name[7:])
    x, y = _raw(name, "train", _key(data_dir), download)
    c = int(y.max()) + 1 if y.numel() else 0
    return DatasetInfo(name, c, tuple(str(i) for i in range(c)), channels=x.shape[1], height=x.shape[2],
                       width=x.shape[3])


def load_dataset(name: str, split: str, data_dir: str | os.PathLike | None = None, *,
                 val_size: int | None = None, limit: int | None = None,
                 download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split as ``(x float32 (N, C, H, W) in [0, 1], y int64 (N,))``.

    ``val`` is a fixed, seeded hold-out of ``val_size`` training images (None: 5,000, or 10 % of a
    training part under 25,000 images); ``train`` is the rest. ``limit`` keeps only the first
    ``limit`` images of the split (for quick runs and tests).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"limit must be a whole number of at least 1, got {limit!r}")
    x, y = _raw(name, "test" if split == "test" else "train", _key(data_dir), download)
    if split in ("train", "val"):
        n = x.shape[0]
        idx = split_indices(n, split, default_val_size(n) if val_size is None else val_size)
        x, y = x[idx], y[idx]
    info = dataset_info(name, data_dir)
    if y.numel() and (y.min() < 0 or y.max() >= info.num_classes):
        raise DataError(f"{name} {split}: labels outside 0..{info.num_classes - 1}")
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x.float().div_(255.0), y.clone()


@lru_cache(maxsize=8)
def _stats(name: str, data_dir: str | None, download: bool):
    x, _ = load_dataset(name, "train-full", data_dir, download=download)
    x = x.transpose(0, 1).flatten(1).double()  # (C, N*H*W)
    return tuple(float(v) for v in x.mean(1)), tuple(max(float(v), 1e-3) for v in x.std(1))


def pixel_stats(name: str, data_dir: str | os.PathLike | None = None,
                download: bool = False) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (mean, std) of the pixels in [0, 1] of the official training part (``train-full``;
    the canonical figures, e.g. MNIST's 0.1307 / 0.3081; std floored at 1e-3). No test image is used."""
    return _stats(name, _key(data_dir), download)
