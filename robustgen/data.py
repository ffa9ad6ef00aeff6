"""Datasets as tensors: IDX reader, named datasets and deterministic splits.

Names: ``mnist`` (bundled with the package, MD5-verified), ``emnist-letters`` (official EMNIST
files from a data folder, optionally downloaded by torchvision) and ``idx:PATH`` (any folder of
MNIST-format IDX files).

``load_dataset(name, split)`` returns ``(x, y)``: x float32 (N, 1, 28, 28) in [0, 1], y int64.
Splits: ``train`` (training set minus the validation hold-out), ``val`` (a fixed hold-out of the
training set, for thresholds and model selection), ``train-full`` and ``test``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import string
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch

SPLITS = ("train", "val", "train-full", "test")
DEFAULT_VAL_SIZE = 5000
_VAL_SEED = 20180601  # fixed: the validation hold-out must never change between runs

# MD5 of the *uncompressed* official MNIST files (yann.lecun.com).
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
EMNIST_LETTERS_FILES = {
    ("train", "images"): "emnist-letters-train-images-idx3-ubyte",
    ("train", "labels"): "emnist-letters-train-labels-idx1-ubyte",
    ("test", "images"): "emnist-letters-test-images-idx3-ubyte",
    ("test", "labels"): "emnist-letters-test-labels-idx1-ubyte",
}
_IDX_DTYPE = {0x08: np.uint8}  # the only element type MNIST-family files use


class DataError(ValueError):
    """A dataset file is missing, malformed or does not match its checksum."""


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    class_names: tuple[str, ...]


# -- IDX files ---------------------------------------------------------------------------------
def read_idx(path: str | os.PathLike, expected_ndim: int | None = None, md5: str | None = None) -> np.ndarray:
    """Read one IDX file (optionally gzipped) into a numpy array, checking it thoroughly.

    Raises :class:`DataError` naming the file for a bad magic number, an unsupported element
    type, a wrong number of dimensions, truncated or surplus data, or an MD5 mismatch.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot read or decompress the file ({e})") from None
    if md5 is not None:
        got = hashlib.md5(raw).hexdigest()
        if got != md5:
            raise DataError(f"{path}: MD5 mismatch (got {got}, expected {md5}); the file is corrupt or "
                            "not the official release — replace it with the original")
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


def _pair_to_tensors(images: np.ndarray, labels: np.ndarray, img_path: Path, lbl_path: Path):
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{img_path} holds {images.shape[0]} images but {lbl_path} holds {labels.shape[0]} "
                        "labels; the two files must come from the same release")
    x = torch.from_numpy(images.copy()).unsqueeze(1)  # (N, 1, H, W) uint8
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def _find(name: str, folders: list[Path]) -> Path | None:
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


# -- named datasets ------------------------------------------------------------------------------
def _mnist_raw(part: str):
    root = resources.files("robustgen") / "_mnist"
    prefix = "train" if part == "train" else "t10k"
    paths = []
    for kind, ndim in (("images-idx3", 3), ("labels-idx1", 1)):
        stem = f"{prefix}-{kind}-ubyte"
        path = Path(str(root / f"{stem}.gz"))
        paths.append((path, read_idx(path, ndim, md5=MNIST_MD5[stem])))
    (ip, images), (lp, labels) = paths
    return _pair_to_tensors(images, labels, ip, lp)


def default_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data folder: ``data_dir``, else $ROBUSTGEN_DATA, else ./data."""
    return Path(data_dir or os.environ.get("ROBUSTGEN_DATA") or "data").expanduser()


def _emnist_folders(root: Path) -> list[Path]:
    # The official zip unpacks into gzip/; torchvision downloads into EMNIST/raw/.
    return [root, root / "gzip", root / "emnist", root / "EMNIST" / "raw"]


def _emnist_letters_raw(part: str, data_dir, download: bool):
    root = default_data_dir(data_dir)
    folders = _emnist_folders(root)
    names = [EMNIST_LETTERS_FILES[(part, k)] for k in ("images", "labels")]
    missing = [n for n in names if _find(n, folders) is None]
    download_error = None
    if missing and download:
        try:
            from torchvision.datasets import EMNIST

            EMNIST(str(root), split="letters", train=(part == "train"), download=True)
        except Exception as e:  # noqa: BLE001 - any failure is reported with the missing files below
            download_error = e
        missing = [n for n in names if _find(n, folders) is None]
    if missing:
        where = ", ".join(str(f) for f in folders)
        hint = (f" The torchvision download failed too: {download_error}." if download_error else
                " Pass --download (download=True) to fetch them with torchvision, or")
        raise DataError(f"EMNIST letters files not found: {', '.join(missing)} (with or without .gz). "
                        f"Looked in: {where}.{hint} put the official files in one of those folders "
                        "(set --data-dir or ROBUSTGEN_DATA).")
    ip, lp = (_find(n, folders) for n in names)
    x, y = _pair_to_tensors(read_idx(ip, 3), read_idx(lp, 1), ip, lp)
    # EMNIST stores images transposed (column-major) and letters as labels 1..26.
    x = x.transpose(-1, -2).contiguous()
    if y.numel() and (y.min() < 1 or y.max() > 26):
        raise DataError(f"{lp}: EMNIST letters labels must lie in 1..26, found {int(y.min())}..{int(y.max())}")
    return x, y - 1


_IDX_PATTERNS = {
    "train": (("train-images",), ("train-labels",)),
    "test": (("t10k-images", "test-images"), ("t10k-labels", "test-labels")),
}


def _idx_folder_file(folder: Path, part: str, kind: int) -> Path:
    keys = _IDX_PATTERNS[part][kind]
    hits = sorted(p for p in folder.iterdir() if p.is_file() and any(k in p.name for k in keys))
    if not hits:
        what = "images" if kind == 0 else "labels"
        raise DataError(f"{folder}: no {part} {what} file (a name containing {' or '.join(keys)})")
    if len(hits) > 1:
        raise DataError(f"{folder}: several candidate files for {part}: {', '.join(h.name for h in hits)}; keep one")
    return hits[0]


def _idx_raw(folder: str, part: str):
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(f"idx dataset folder {root} does not exist")
    ip, lp = _idx_folder_file(root, part, 0), _idx_folder_file(root, part, 1)
    return _pair_to_tensors(read_idx(ip, 3), read_idx(lp, 1), ip, lp)


@lru_cache(maxsize=8)
def _raw(name: str, part: str, data_dir: str | None, download: bool):
    """uint8 images (N, 1, H, W) and int64 labels of one official part ('train' or 'test')."""
    if name == "mnist":
        return _mnist_raw(part)
    if name == "emnist-letters":
        return _emnist_letters_raw(part, data_dir, download)
    if name.startswith("idx:"):
        return _idx_raw(name[4:], part)
    raise ValueError(f"unknown dataset {name!r}; use 'mnist', 'emnist-letters' or 'idx:PATH'")


def dataset_info(name: str, data_dir: str | None = None, download: bool = False) -> DatasetInfo:
    """Class count and class names of a dataset (for idx:PATH the count comes from the labels)."""
    if name == "mnist":
        return DatasetInfo(name, 10, tuple(str(i) for i in range(10)))
    if name == "emnist-letters":
        return DatasetInfo(name, 26, tuple(string.ascii_lowercase))
    _, y = _raw(name, "train", _key(data_dir), download)
    c = int(y.max()) + 1 if y.numel() else 0
    return DatasetInfo(name, c, tuple(str(i) for i in range(c)))


def _key(data_dir) -> str | None:
    return None if data_dir is None else str(data_dir)


def load_dataset(name: str, split: str, data_dir: str | os.PathLike | None = None, *,
                 val_size: int = DEFAULT_VAL_SIZE, limit: int | None = None,
                 download: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split as ``(x float32 (N,1,28,28) in [0,1], y int64 (N,))``.

    ``val`` is a fixed, seeded hold-out of ``val_size`` training images; ``train`` is the rest.
    ``limit`` keeps only the first ``limit`` images of the split (for quick runs and tests).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    x, y = _raw(name, "test" if split == "test" else "train", _key(data_dir), download)
    if split in ("train", "val"):
        n = x.shape[0]
        if not 0 < val_size < n:
            raise ValueError(f"val_size must lie between 1 and {n - 1} for {name}, got {val_size}")
        perm = torch.from_numpy(np.random.RandomState(_VAL_SEED).permutation(n))
        idx = perm[:val_size] if split == "val" else perm[val_size:]
        x, y = x[idx], y[idx]
    info = dataset_info(name, data_dir)
    if y.numel() and (y.min() < 0 or y.max() >= info.num_classes):
        raise DataError(f"{name} {split}: labels outside 0..{info.num_classes - 1}")
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return x.float().div_(255.0), y.clone()
