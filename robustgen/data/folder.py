"""``folder:PATH``: a user's own images in torchvision's ImageFolder layout.

    PATH/train/<class>/*.png|jpg|jpeg
    PATH/test/<class>/*.png|jpg|jpeg

Class names are the folder names, sorted (the same order in both parts; a class missing from
``test`` is fine, one missing from ``train`` is an error). Every image must have the same size.
When every file is greyscale the images have 1 channel, otherwise 3 (RGB; greyscale files are
repeated over the channels, alpha is dropped). A file that is not an image, or of another size,
is named in the error.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from .base import DataError, DatasetInfo

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def _classes(root: Path, part: str) -> list[str]:
    folder = root / part
    if not folder.is_dir():
        raise DataError(f"folder dataset {root}: no '{part}' folder (expected {root}/{part}/<class>/*.png)")
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise DataError(f"folder dataset {folder}: no class folders")
    return names


def _files(root: Path, part: str, classes: list[str]) -> tuple[list[Path], list[int]]:
    files, labels = [], []
    for label, name in enumerate(classes):
        folder = root / part / name
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            if f.is_file() and not f.name.startswith("."):
                files.append(f)
                labels.append(label)
    if not files:
        raise DataError(f"folder dataset {root / part}: no image files")
    return files, labels


def _open(path: Path):
    from PIL import Image, UnidentifiedImageError

    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise DataError(f"{path}: not an image file (expected {', '.join(IMAGE_SUFFIXES)})")
    try:
        img = Image.open(path)
        img.load()
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise DataError(f"{path}: not a readable image ({e})") from None
    return img


@lru_cache(maxsize=4)
def _layout(root: str) -> tuple[tuple[str, ...], int, int, int]:
    """(class names, channels, height, width) from the training part, every file checked."""
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"folder dataset {path} does not exist")
    classes = _classes(path, "train")
    extra = [c for c in (_classes(path, "test") if (path / "test").is_dir() else []) if c not in classes]
    if extra:
        raise DataError(f"folder dataset {path}: test classes {', '.join(extra)} have no train folder")
    files, _ = _files(path, "train", classes)
    size, grey = None, True
    for f in files:
        with _open(f) as img:
            if size is None:
                size = img.size
            elif img.size != size:
                raise DataError(f"{f}: image is {img.size[0]}x{img.size[1]} pixels, the others {size[0]}x{size[1]}; "
                                "every image of a folder dataset must have one size")
            grey = grey and img.mode in GREY_MODES
    return tuple(classes), 1 if grey else 3, size[1], size[0]


def info(root: str) -> DatasetInfo:
    classes, c, h, w = _layout(str(root))
    return DatasetInfo(f"folder:{root}", len(classes), classes, channels=c, height=h, width=w)


def raw(root: str, part: str):
    """uint8 images (N, C, H, W) and int64 labels of the 'train' or 'test' part."""
    classes, c, h, w = _layout(str(root))
    path = Path(root).expanduser()
    if part == "test" and not (path / "test").is_dir():
        raise DataError(f"folder dataset {path}: no 'test' folder (expected {path}/test/<class>/*.png)")
    files, labels = _files(path, part, list(classes))
    out = np.empty((len(files), c, h, w), dtype=np.uint8)
    for i, f in enumerate(files):
        with _open(f) as img:
            if img.size != (w, h):
                raise DataError(f"{f}: image is {img.size[0]}x{img.size[1]} pixels, the dataset's are {w}x{h}")
            if c == 1:
                if img.mode not in GREY_MODES:
                    raise DataError(f"{f}: a colour image in a greyscale dataset (the training images are grey)")
                out[i, 0] = np.asarray(img.convert("L"))
            else:
                out[i] = np.asarray(img.convert("RGB")).transpose(2, 0, 1)
    return torch.from_numpy(out), torch.tensor(labels, dtype=torch.int64)
