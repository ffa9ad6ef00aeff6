"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017): 28 x 28 grey images of 10 kinds of clothing.

Found, in this order, in the data folder (``--data-dir`` / $ROBUSTGEN_DATA / ./data, also its
``fashion-mnist/`` and torchvision's ``FashionMNIST/raw/``), where Debian's
``dataset-fashion-mnist`` package installs them (/usr/share/datasets/fashion-mnist), or
downloaded by torchvision with ``download=True``. Every file is checked against the MD5 of the
official release (of the uncompressed bytes, so gzipped and plain copies both pass).
"""

from __future__ import annotations

from pathlib import Path

from .base import DatasetInfo, default_data_dir, find_file, missing_files_error, try_download
from .idx import read_idx_pair

INFO = DatasetInfo("fashion-mnist", 10, ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                                          "Sneaker", "Bag", "Ankle boot"))
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")  # apt-get install dataset-fashion-mnist

# MD5 of the *uncompressed* official files (github.com/zalandoresearch/fashion-mnist).
MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}


def folders(data_dir=None) -> list[Path]:
    root = default_data_dir(data_dir)
    return [root, root / "fashion-mnist", root / "FashionMNIST" / "raw", DEBIAN_DIR]


def raw(part: str, data_dir=None, download: bool = False):
    """uint8 images (N, 1, 28, 28) and int64 labels of the official 'train' or 'test' part."""
    prefix = "train" if part == "train" else "t10k"
    stems = [f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"]
    places = folders(data_dir)
    missing = [s for s in stems if find_file(s, places) is None]
    error = None
    if missing and download:
        from torchvision.datasets import FashionMNIST

        error = try_download(lambda: FashionMNIST(str(default_data_dir(data_dir)), train=(part == "train"),
                                                  download=True))
        missing = [s for s in stems if find_file(s, places) is None]
    if missing:
        raise missing_files_error("Fashion-MNIST", [f"{s}(.gz)" for s in missing], places, error,
                                  " install Debian's package (apt-get install dataset-fashion-mnist),")
    ip, lp = (find_file(s, places) for s in stems)
    return read_idx_pair(ip, lp, md5=(MD5[stems[0]], MD5[stems[1]]))
