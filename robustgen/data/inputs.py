"""Images to score, read from files: ``.npy``/``.npz`` arrays, IDX files, folders of PNG/JPEG images.

``read_inputs(paths, shape=(C, H, W))`` returns the images it could read as :class:`Batch` es
(float32 (N, C, H, W) in [0, 1], with the source file and index of every image) and, for each file
it could not read or whose size or channels differ from ``shape``, a sentence naming the file and
the problem; one bad file never stops the others.

- ``.npy``/``.npz``: shape (N, C, H, W), (N, H, W, C), or (N, H, W) for one channel; float in
  [0, 1], or uint8 when ``uint8=True`` (divided by 255). An ``.npz`` with several arrays must name
  one ``x`` or ``images``. Pickled (object) arrays are refused, never loaded.
- IDX (``*-idx3-ubyte``, optionally ``.gz``): 8-bit grey images, divided by 255.
- a folder: every ``*.png``/``*.jpg``/``*.jpeg`` in it (sorted by name), each H x W; read as grey
  for a one-channel model and as RGB for a three-channel one (a colour file given to a grey model,
  or a grey file to an RGB one, is named and skipped: the channels differ), divided by 255.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import DataError
from .folder import GREY_MODES, IMAGE_SUFFIXES
from .idx import read_idx


@dataclass
class Batch:
    sources: list[str]  # the file each image came from
    indices: list[int]  # its position in that file (0 for a PNG)
    images: np.ndarray  # (N, C, H, W) float32 in [0, 1]


class InputError(ValueError):
    """A file to score cannot be read or holds the wrong kind of images."""


def _describe(shape) -> str:
    c, h, w = shape
    return f"{c} channel{'s' if c > 1 else ''}, {h}x{w}"


def layout(found: tuple, shape) -> str:
    """How images of array shape ``found`` map onto a model's (C, H, W): ``"nchw"`` as they are,
    ``"nhwc"`` channels last (as ART users pass numpy), ``"nhw"`` one channel without its axis;
    anything else is a ValueError naming both shapes. Shared by file inputs and the detector API."""
    c, h, w = shape
    found = tuple(found)
    if len(found) == 4 and found[1:] == (c, h, w):
        return "nchw"
    if len(found) == 4 and found[1:] == (h, w, c):
        return "nhwc"
    if len(found) == 3 and c == 1 and found[1:] == (h, w):
        return "nhw"
    grey = f", (N, {h}, {w})" if c == 1 else ""
    raise ValueError(f"images must have shape (N, {c}, {h}, {w}) or (N, {h}, {w}, {c}){grey} for this model "
                     f"({_describe(shape)}), got {found}")


def _layout(path: Path, array: np.ndarray, shape) -> np.ndarray:
    try:
        kind = layout(array.shape, shape)
    except ValueError as e:
        raise InputError(f"{path}: {e}") from None
    if kind == "nhwc":
        return array.transpose(0, 3, 1, 2)
    return array[:, None] if kind == "nhw" else array


def _check(path: Path, array: np.ndarray, uint8: bool, shape) -> np.ndarray:
    if array.dtype == np.uint8:
        if not uint8:
            raise InputError(f"{path}: 8-bit (uint8) images; pass --uint8 to read them as pixel / 255, or save "
                             "floats in [0, 1]")
        array = array.astype(np.float32) / 255.0
    elif not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{path}: images must be float in [0, 1] (or uint8 with --uint8), found dtype {array.dtype}")
    array = _layout(path, array, shape)
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
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded:
            keys = list(loaded.keys())
            key = keys[0] if len(keys) == 1 else next((k for k in ("x", "images") if k in keys), None)
            if key is None:
                raise InputError(f"{path}: holds arrays {', '.join(keys) or '(none)'}; name the images 'x' or 'images'")
            return loaded[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        if isinstance(e, InputError):
            raise
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise InputError(f"{path}: holds a pickled (object) array, which is refused: save numeric images") from None
        raise InputError(f"{path}: not a readable numpy file ({type(e).__name__}: {e})") from None


def _read_image(path: Path, shape) -> np.ndarray:
    """One image file as uint8 (C, H, W), checked against the model's channels and size."""
    from PIL import Image, UnidentifiedImageError

    c, h, w = shape
    try:
        with Image.open(path) as img:
            img.load()
            grey = img.mode in GREY_MODES
            size = img.size
            if (c == 1) != grey:
                kind = "greyscale" if grey else "colour"
                raise InputError(f"{path}: a {kind} image, the model expects {_describe(shape)}")
            pixels = np.asarray(img.convert("L" if c == 1 else "RGB"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"{path}: not a readable image ({e})") from None
    if size != (w, h):
        raise InputError(f"{path}: image is {size[0]}x{size[1]} pixels, the model expects {w}x{h}")
    return pixels[None] if c == 1 else pixels.transpose(2, 0, 1)


def read_inputs(paths: list[str | os.PathLike], *, uint8: bool = False,
                shape: tuple[int, int, int] = (1, 28, 28)) -> tuple[list[Batch], list[str]]:
    """Read every path; return (batches, error sentences). See the module docstring."""
    batches, errors = [], []
    for raw in paths:
        path = Path(raw)
        try:
            if path.is_dir():
                files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
                if not files:
                    raise InputError(f"{path}: folder holds no .png or .jpg images")
                good, sources = [], []
                for f in files:
                    try:
                        good.append(_read_image(f, shape))
                        sources.append(str(f))
                    except InputError as e:
                        errors.append(str(e))
                if good:
                    images = np.stack(good).astype(np.float32) / 255.0
                    batches.append(Batch(sources, [0] * len(sources), images))
                continue
            if not path.is_file():
                raise InputError(f"{path}: no such file or folder")
            if path.suffix in (".npy", ".npz"):
                images = _check(path, _read_array(path), uint8, shape)
            elif path.suffix.lower() in IMAGE_SUFFIXES:
                images = _read_image(path, shape)[None].astype(np.float32) / 255.0
            elif "idx" in path.name or path.name.endswith("ubyte"):
                try:
                    images = read_idx(path, expected_ndim=3)[:, None].astype(np.float32) / 255.0
                except DataError as e:
                    raise InputError(str(e)) from None
                images = _check(path, images, uint8, shape)
            else:
                raise InputError(f"{path}: unknown kind of file; give .npy, .npz, an IDX image file, a PNG/JPEG "
                                 "image or a folder of them")
            batches.append(Batch([str(path)] * len(images), list(range(len(images))), images))
        except InputError as e:
            errors.append(str(e))
    return batches, errors
