"""The IDX format (MNIST's): a reader that checks every byte, and folders of IDX files (``idx:PATH``)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from .base import DataError, check_md5

_IDX_DTYPE = {0x08: np.uint8}  # the only element type MNIST-family files use


def read_idx(path: str | os.PathLike, expected_ndim: int | None = None, md5: str | None = None) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a numpy array, checking it thoroughly.

    Raises :class:`DataError` naming the file for a bad magic number, an unsupported element
    type, a wrong number of dimensions, truncated or surplus data, or an MD5 mismatch (``md5`` is
    the sum of the *uncompressed* bytes).
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot read or decompress the file ({e})") from None
    check_md5(path, raw, md5)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{path}: bad magic number {raw[:4].hex() or '(empty file)'}; not an IDX file")
    dtype_code, ndim = raw[2], raw[3]
    if dtype_code not in _IDX_DTYPE:
        raise DataError(f"{path}: unsupported IDX element type 0x{dtype_code:02x} (only unsigned bytes, 0x08)")
    if expected_ndim is not None and ndim != expected_ndim:
        kind = {1: "label", 3: "image"}.get(expected_ndim, f"{expected_ndim}-d")
        raise DataError(f"{path}: bad magic number 0x{int.from_bytes(raw[:4], 'big'):08x}: expected a {kind} "
                        f"file with {expected_ndim} dimension(s), found {ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape, dtype=np.int64))
    body = len(raw) - header
    if body < expected:
        raise DataError(f"{path}: truncated data: header promises {expected} bytes for shape {shape}, file has {body}")
    if body > expected:
        raise DataError(f"{path}: {body - expected} unexpected bytes after the data for shape {shape}")
    return np.frombuffer(raw, dtype=_IDX_DTYPE[dtype_code], offset=header).reshape(shape)


def read_idx_pair(img_path: Path, lbl_path: Path, md5: tuple[str | None, str | None] = (None, None)):
    """An images file and its labels file as (uint8 (N, 1, H, W), int64 (N,)) tensors."""
    images, labels = read_idx(img_path, 3, md5=md5[0]), read_idx(lbl_path, 1, md5=md5[1])
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{img_path} holds {images.shape[0]} images but {lbl_path} holds {labels.shape[0]} "
                        "labels; the two files must come from the same release")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


_IDX_PATTERNS = {
    "train": (("train-images",), ("train-labels",)),
    "test": (("t10k-images", "test-images"), ("t10k-labels", "test-labels")),
}


def _folder_file(folder: Path, part: str, kind: int) -> Path:
    keys = _IDX_PATTERNS[part][kind]
    hits = sorted(p for p in folder.iterdir() if p.is_file() and any(k in p.name for k in keys))
    if not hits:
        what = "images" if kind == 0 else "labels"
        raise DataError(f"{folder}: no {part} {what} file (a name containing {' or '.join(keys)})")
    if len(hits) > 1:
        raise DataError(f"{folder}: several candidate files for {part}: {', '.join(h.name for h in hits)}; keep one")
    return hits[0]


def idx_folder_raw(folder: str, part: str):
    """``idx:PATH``: the train or test pair of any folder of MNIST-format IDX files."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(f"idx dataset folder {root} does not exist")
    return read_idx_pair(_folder_file(root, part, 0), _folder_file(root, part, 1))
