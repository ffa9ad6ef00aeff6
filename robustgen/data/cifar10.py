"""CIFAR-10 (Krizhevsky 2009) in torchvision's on-disk format: the python pickle batches.

``DATA_DIR/cifar-10-batches-py/{data_batch_1..5, test_batch}``, as the official
``cifar-10-python.tar.gz`` unpacks and torchvision's ``CIFAR10(download=True)`` leaves them.
Pickles can run code when loaded; these are read with an unpickler that only rebuilds numpy
arrays, lists, dicts, strings and numbers, so a tampered file is refused, not run, and each file is
checked against the MD5 of the official release.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import torch

from .base import DataError, DatasetInfo, default_data_dir, missing_files_error, read_checked, try_download

INFO = DatasetInfo("cifar10", 10, ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                                    "truck"), channels=3, height=32, width=32)
FOLDER = "cifar-10-batches-py"
# MD5 of the official files (the sums torchvision checks).
MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_batch(path: Path, md5: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch as (uint8 images (N, 3, 32, 32), labels (N,)), checked thoroughly."""
    data = read_checked(path, md5)
    try:
        batch = _ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as e:  # noqa: BLE001 - pickle raises many types for a corrupt or tampered file
        raise DataError(f"{path}: not a CIFAR-10 batch ({type(e).__name__}: {e})") from None
    if not isinstance(batch, dict) or "data" not in batch or not ({"labels", "fine_labels"} & set(batch)):
        raise DataError(f"{path}: not a CIFAR-10 batch (a dict with 'data' and 'labels' expected)")
    x, y = np.asarray(batch["data"]), np.asarray(batch.get("labels", batch.get("fine_labels")))
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * 32 * 32 or y.shape != (x.shape[0],):
        raise DataError(f"{path}: 'data' must be uint8 (N, 3072) with N labels, found {x.dtype} {x.shape} and "
                        f"{y.shape[0] if y.ndim else 0} labels")
    return x.reshape(-1, 3, 32, 32), y.astype(np.int64)


def raw(part: str, data_dir=None, download: bool = False):
    root = default_data_dir(data_dir)
    folder = root / FOLDER
    names = [f"data_batch_{i}" for i in range(1, 6)] if part == "train" else ["test_batch"]
    missing = [n for n in names if not (folder / n).is_file()]
    error = None
    if missing and download:
        from torchvision.datasets import CIFAR10

        error = try_download(lambda: CIFAR10(str(root), train=(part == "train"), download=True))
        missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise missing_files_error("CIFAR-10", missing, [folder], error)
    parts = [read_batch(folder / n, MD5.get(n)) for n in names]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return torch.from_numpy(x), torch.from_numpy(y)
