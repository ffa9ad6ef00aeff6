"""SVHN (Netzer et al. 2011), cropped digits, in torchvision's on-disk format: the ``.mat`` files.

``DATA_DIR/{train_32x32.mat, test_32x32.mat}`` (torchvision's ``SVHN(download=True)`` leaves them
there; also looked for under ``svhn/``). ``X`` is (32, 32, 3, N) uint8, ``y`` (N, 1) with 10 standing
for the digit 0, as the official release has it; labels come out as 0..9.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from .base import DataError, DatasetInfo, default_data_dir, missing_files_error, read_checked, try_download

INFO = DatasetInfo("svhn", 10, tuple(str(i) for i in range(10)), channels=3, height=32, width=32)
FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
MD5 = {"train_32x32.mat": "e26dedcc434d2e4c54c9b2d4a06d8373", "test_32x32.mat": "eb5a983be6a315427106f1b69d2919d8"}


def folders(data_dir=None) -> list[Path]:
    root = default_data_dir(data_dir)
    return [root, root / "svhn"]


def read_mat(path: Path, md5: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One SVHN ``.mat`` file as (uint8 images (N, 3, 32, 32), int64 labels 0..9)."""
    import scipy.io

    data = read_checked(path, md5)
    try:
        mat = scipy.io.loadmat(io.BytesIO(data), variable_names=["X", "y"])
    except Exception as e:  # noqa: BLE001 - scipy raises many types for a corrupt file
        raise DataError(f"{path}: not a readable MATLAB file ({type(e).__name__}: {e})") from None
    if "X" not in mat or "y" not in mat:
        raise DataError(f"{path}: an SVHN file holds arrays 'X' and 'y'; found {', '.join(k for k in mat if k[0] != '_')}")
    x, y = mat["X"], np.asarray(mat["y"]).reshape(-1)
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != y.shape[0]:
        raise DataError(f"{path}: 'X' must be uint8 (32, 32, 3, N) with N labels, found {x.dtype} {x.shape} and "
                        f"{y.shape[0]} labels")
    if y.size and (y.min() < 1 or y.max() > 10):
        raise DataError(f"{path}: SVHN labels must lie in 1..10, found {int(y.min())}..{int(y.max())}")
    return np.ascontiguousarray(x.transpose(3, 2, 0, 1)), (y % 10).astype(np.int64)


def raw(part: str, data_dir=None, download: bool = False):
    name = FILES[part]
    places = folders(data_dir)
    path = next((f / name for f in places if (f / name).is_file()), None)
    error = None
    if path is None and download:
        from torchvision.datasets import SVHN

        error = try_download(lambda: SVHN(str(default_data_dir(data_dir)), split=part, download=True))
        path = next((f / name for f in places if (f / name).is_file()), None)
    if path is None:
        raise missing_files_error("SVHN", [name], places, error)
    x, y = read_mat(path, MD5[name])
    return torch.from_numpy(x), torch.from_numpy(y)
