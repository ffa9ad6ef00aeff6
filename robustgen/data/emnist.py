"""EMNIST letters (Cohen et al. 2017): 26 classes of handwritten letters, official IDX files."""

from __future__ import annotations

import string
from pathlib import Path

from .base import DataError, DatasetInfo, default_data_dir, find_file, missing_files_error, try_download
from .idx import read_idx_pair

INFO = DatasetInfo("emnist-letters", 26, tuple(string.ascii_lowercase))
FILES = {
    ("train", "images"): "emnist-letters-train-images-idx3-ubyte",
    ("train", "labels"): "emnist-letters-train-labels-idx1-ubyte",
    ("test", "images"): "emnist-letters-test-images-idx3-ubyte",
    ("test", "labels"): "emnist-letters-test-labels-idx1-ubyte",
}


def folders(data_dir=None) -> list[Path]:
    root = default_data_dir(data_dir)
    # The official zip unpacks into gzip/; torchvision downloads into EMNIST/raw/.
    return [root, root / "gzip", root / "emnist", root / "EMNIST" / "raw"]


def raw(part: str, data_dir=None, download: bool = False):
    places = folders(data_dir)
    names = [FILES[(part, k)] for k in ("images", "labels")]
    missing = [n for n in names if find_file(n, places) is None]
    error = None
    if missing and download:
        from torchvision.datasets import EMNIST

        error = try_download(lambda: EMNIST(str(default_data_dir(data_dir)), split="letters",
                                            train=(part == "train"), download=True))
        missing = [n for n in names if find_file(n, places) is None]
    if missing:
        raise missing_files_error("EMNIST letters", [f"{n}(.gz)" for n in missing], places, error)
    ip, lp = (find_file(n, places) for n in names)
    x, y = read_idx_pair(ip, lp)
    # EMNIST stores images transposed (column-major) and letters as labels 1..26.
    x = x.transpose(-1, -2).contiguous()
    if y.numel() and (y.min() < 1 or y.max() > 26):
        raise DataError(f"{lp}: EMNIST letters labels must lie in 1..26, found {int(y.min())}..{int(y.max())}")
    return x, y - 1
