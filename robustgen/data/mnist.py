"""MNIST (LeCun et al. 1998), bundled with the package and MD5-verified."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .base import DatasetInfo
from .idx import read_idx_pair

INFO = DatasetInfo("mnist", 10, tuple(str(i) for i in range(10)))

# MD5 of the *uncompressed* official MNIST files (yann.lecun.com).
MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def raw(part: str):
    """uint8 images (N, 1, 28, 28) and int64 labels of the bundled 'train' or 'test' part."""
    root = resources.files("robustgen.data") / "_mnist"
    prefix = "train" if part == "train" else "t10k"
    stems = [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
    paths = [Path(str(root / f"{s}.gz")) for s in stems]
    return read_idx_pair(*paths, md5=(MD5[stems[0]], MD5[stems[1]]))
