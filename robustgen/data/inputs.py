"""Images to score, read from files a chunk at a time: ``.npy``/``.npz`` arrays, IDX files, PNG/JPEG
images and folders of them (the readers are in :mod:`.input_files`).

    sources, errors = open_inputs(paths, shape=(1, 28, 28))     # headers only
    for batch in iter_batches(sources, chunk=4096, on_error=print):
        batch.images                                           # float32 (k, C, H, W) in [0, 1]

Memory stays bounded by one chunk whatever the number of images. A file that cannot be read, or whose
images differ from ``shape`` (size, channels, dtype, NaN, range), is named in one sentence and skipped
whole before any of it is used; one bad file never stops the others; in a folder each bad image is
named and skipped. ``skip=k`` starts after the first k images the same call would yield (resuming).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .folder import IMAGE_SUFFIXES
from .image_files import ImageFiles
from .input_files import IdxSource, InputError, NpySource, NpzSource, Source, layout

__all__ = ["Batch", "InputError", "iter_batches", "layout", "open_inputs", "open_source", "read_inputs"]


@dataclass
class Batch:
    sources: list[str]  # the file each image came from
    indices: list[int]  # its position in that file (0 for a PNG)
    images: np.ndarray  # (N, C, H, W) float32 in [0, 1]


def open_source(path: Path, shape, uint8: bool) -> Source:
    """The :class:`Source` of one path (its header read, nothing else); InputError when it has none."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"{path}: folder holds no .png or .jpg images")
        return ImageFiles(path, shape, files)
    if not path.is_file():
        raise InputError(f"{path}: no such file or folder")
    if path.suffix == ".npy":
        return NpySource(path, shape, uint8)
    if path.suffix == ".npz":
        return NpzSource(path, shape, uint8)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFiles(path, shape, [path])
    if "idx" in path.name or path.name.endswith("ubyte") or path.name.endswith("ubyte.gz"):
        return IdxSource(path, shape, uint8)
    raise InputError(f"{path}: unknown kind of file; give .npy, .npz, an IDX image file, a PNG/JPEG image or a "
                     "folder of them")


def open_inputs(paths: list[str | os.PathLike], *, uint8: bool = False,
                shape: tuple[int, int, int] = (1, 28, 28)) -> tuple[list[Source], list[str]]:
    """A :class:`Source` per readable path (its header read, no pixels) and an error sentence per other."""
    sources, errors = [], []
    for raw in paths:
        try:
            sources.append(open_source(Path(raw), shape, uint8))
        except InputError as e:
            errors.append(str(e))
    return sources, errors


def iter_batches(sources: list[Source], *, chunk: int = 4096, skip: int = 0,
                 on_error: Callable[[str], None] | None = None) -> Iterator[Batch]:
    """Batches of at most ``chunk`` images, in order, after the first ``skip`` good images.

    Each source is checked before its first image is used; a bad one is reported through ``on_error``
    and left out whole, as is each unreadable file of a folder (so ``skip`` counts exactly the images
    an earlier call yielded). The batch holding the ``skip``-th image is cut so that nothing before it
    is yielded again."""
    report = on_error or (lambda message: None)
    for source in sources:
        try:
            source.check()
            for start in range(0, source.n, chunk):
                stop = min(source.n, start + chunk)
                if skip >= stop - start and source.uniform:
                    skip -= stop - start  # all good once the source passed check(): no need to read them
                    continue
                names, indices, images = source.read(start, stop)
                for message in source.skipped:
                    report(message)
                source.skipped.clear()
                if skip:
                    cut = min(skip, len(names))
                    names, indices, images, skip = names[cut:], indices[cut:], images[cut:], skip - cut
                if len(names):
                    yield Batch(names, indices, images)
        except InputError as e:
            report(str(e))
        finally:
            source.close()


def read_inputs(paths: list[str | os.PathLike], *, uint8: bool = False,
                shape: tuple[int, int, int] = (1, 28, 28)) -> tuple[list[Batch], list[str]]:
    """Every image of ``paths`` at once (small inputs): (batches, error sentences)."""
    sources, errors = open_inputs(paths, uint8=uint8, shape=shape)
    batches = list(iter_batches(sources, chunk=1 << 30, on_error=errors.append))
    return batches, errors
