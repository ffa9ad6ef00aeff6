"""Images to score, read from files: ``.npy``/``.npz`` arrays, IDX files, folders of PNG images.

``read_inputs(paths)`` returns the images it could read as :class:`Batch` es (float32 (N, 1, S, S)
in [0, 1], with the source file and index of every image) and, for each file it could not read, a
sentence naming the file and the problem; one bad file never stops the others.

- ``.npy``/``.npz``: shape (N, S, S) or (N, 1, S, S); float in [0, 1], or uint8 when
  ``uint8=True`` (divided by 255). An ``.npz`` with several arrays must name one ``x`` or ``images``.
- IDX (``*-idx3-ubyte``, optionally ``.gz``): 8-bit images, divided by 255.
- a folder: every ``*.png`` in it (sorted by name), each S x S, converted to grey and divided by 255.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import DataError, read_idx


@dataclass
class Batch:
    sources: list[str]  # the file each image came from
    indices: list[int]  # its position in that file (0 for a PNG)
    images: np.ndarray  # (N, 1, S, S) float32 in [0, 1]


class InputError(ValueError):
    """A file to score cannot be read or holds the wrong kind of images."""


def _check(path: Path, array: np.ndarray, uint8: bool, size: int) -> np.ndarray:
    if array.dtype == np.uint8:
        if not uint8:
            raise InputError(f"{path}: 8-bit (uint8) images; pass --uint8 to read them as pixel / 255, or save "
                             "floats in [0, 1]")
        array = array.astype(np.float32) / 255.0
    elif not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{path}: images must be float in [0, 1] (or uint8 with --uint8), found dtype {array.dtype}")
    if array.ndim == 3:
        array = array[:, None]
    if array.ndim != 4 or array.shape[1] != 1 or array.shape[2:] != (size, size):
        raise InputError(f"{path}: images must have shape (N, {size}, {size}) or (N, 1, {size}, {size}), "
                         f"found {array.shape}")
    if array.shape[0] == 0:
        raise InputError(f"{path}: holds no images")
    if not np.isfinite(array).all():
        raise InputError(f"{path}: images contain NaN or infinite values")
    lo, hi = float(array.min()), float(array.max())
    if lo < 0.0 or hi > 1.0:
        raise InputError(f"{path}: pixel values lie in [{lo:.4g}, {hi:.4g}], not [0, 1]; divide 8-bit images by 255 "
                         "or pass uint8 arrays with --uint8")
    return np.ascontiguousarray(array, dtype=np.float32)


def _read_array(path: Path) -> np.ndarray:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise InputError(f"{path}: not a readable numpy file ({e})") from None
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        keys = list(loaded.keys())
        key = keys[0] if len(keys) == 1 else next((k for k in ("x", "images") if k in keys), None)
        if key is None:
            raise InputError(f"{path}: holds arrays {', '.join(keys) or '(none)'}; name the images 'x' or 'images'")
        return loaded[key]


def _read_png(path: Path, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            grey = np.asarray(img.convert("L"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as e:
        raise InputError(f"{path}: not a readable PNG image ({e})") from None
    if grey.shape != (size, size):
        raise InputError(f"{path}: image is {grey.shape[1]}x{grey.shape[0]} pixels, the model expects {size}x{size}")
    return grey


def read_inputs(paths: list[str | os.PathLike], *, uint8: bool = False,
                image_size: int = 28) -> tuple[list[Batch], list[str]]:
    """Read every path; return (batches, error sentences). See the module docstring."""
    batches, errors = [], []
    for raw in paths:
        path = Path(raw)
        try:
            if path.is_dir():
                pngs = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png")
                if not pngs:
                    raise InputError(f"{path}: folder holds no .png images")
                good, sources = [], []
                for png in pngs:
                    try:
                        good.append(_read_png(png, image_size))
                        sources.append(str(png))
                    except InputError as e:
                        errors.append(str(e))
                if good:
                    images = np.stack(good)[:, None].astype(np.float32) / 255.0
                    batches.append(Batch(sources, [0] * len(sources), images))
                continue
            if not path.is_file():
                raise InputError(f"{path}: no such file or folder")
            if path.suffix in (".npy", ".npz"):
                images = _check(path, _read_array(path), uint8, image_size)
            elif "idx" in path.name or path.name.endswith("ubyte"):
                try:
                    images = read_idx(path, expected_ndim=3)[:, None].astype(np.float32) / 255.0
                except DataError as e:
                    raise InputError(str(e)) from None
                images = _check(path, images, uint8, image_size)
            else:
                raise InputError(f"{path}: unknown kind of file; give .npy, .npz, an IDX image file or a folder of PNGs")
            batches.append(Batch([str(path)] * len(images), list(range(len(images))), images))
        except InputError as e:
            errors.append(str(e))
    return batches, errors
