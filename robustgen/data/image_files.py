"""PNG/JPEG images to score, one file or a folder of them, read a chunk of files at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .folder import GREY_MODES
from .input_files import InputError, Source, describe


def read_image(path: Path, shape) -> np.ndarray:
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
                raise InputError(f"{path}: a {kind} image, the model expects {describe(shape)}")
            pixels = np.asarray(img.convert("L" if c == 1 else "RGB"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError) as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"{path}: not a readable image ({e})") from None
    if size != (w, h):
        raise InputError(f"{path}: image is {size[0]}x{size[1]} pixels, the model expects {w}x{h}")
    return pixels[None] if c == 1 else pixels.transpose(2, 0, 1)


class ImageFiles(Source):
    """PNG/JPEG files (a folder's, sorted by name, or one file), each one image with index 0; a file
    that cannot be read or does not fit is named in ``skipped`` and left out, the others are scored."""

    uniform = False

    def __init__(self, path, shape, files: list[Path]):
        super().__init__(path, shape, False)
        self.files, self.n = files, len(files)

    def read(self, start, stop):
        good, names = [], []
        for f in self.files[start:stop]:
            try:
                good.append(read_image(f, self.shape))
                names.append(str(f))
            except InputError as e:
                self.skipped.append(str(e))
        images = np.stack(good).astype(np.float32) / 255.0 if good else np.zeros((0, *self.shape), np.float32)
        return names, [0] * len(names), images
