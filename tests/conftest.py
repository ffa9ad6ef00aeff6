import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from robustgen.data import load_dataset
from robustgen.training.config import load_config
from robustgen.training.train import build_model, fit

# one torch thread a worker when pytest-xdist runs the suite (the README's command: a worker per core), so the
# workers never ask for more threads than there are cores; two threads in a single process
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


@pytest.fixture(scope="session", autouse=True)
def float32_training_on_every_cpu():
    """``train.precision = "auto"`` trains in bfloat16 on CPUs with bfloat16 units and in float32 elsewhere;
    the tests' models must not depend on the machine, so here every CPU answers "no bfloat16 units" (a test
    of ``auto`` itself sets its own answer)."""
    patch = pytest.MonkeyPatch()
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        patch.setattr(torch.cpu, probe, lambda: False, raising=False)
    yield
    patch.undo()


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    """Write a uint8 array as an IDX file (the format of MNIST/EMNIST)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    raw = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    raw += array.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


@pytest.fixture(scope="session")
def mnist_small():
    """4,000 real MNIST training images and 1,000 validation images."""
    x, y = load_dataset("mnist", "train", limit=4000)
    xv, yv = load_dataset("mnist", "val", limit=1000)
    return (x, y), (xv, yv)


def tiny_config(**train):
    cfg = load_config("smoke", [f"train.{k}={v}" for k, v in train.items()])
    return cfg


def run_config(runs_dir, epochs: int, *overrides: str):
    """``smoke`` as a quick ``train_run`` in ``runs_dir``: 1,024 training images, 500 for validation."""
    return load_config("smoke", [f"runs_dir=\"{runs_dir}\"", f"train.epochs={epochs}", "data.limit_train=1024",
                                 "data.val_size=500", "train.batch_size=128", "train.shift=1", *overrides])


@pytest.fixture(scope="session")
def trained_autoencoder(mnist_small):
    """A label-free autoencoder of the same size (the magnet scores' network), trained like
    ``trained_model``: 8 epochs on the same 4,000 MNIST images, reconstruction loss only."""
    torch.manual_seed(0)
    cfg = load_config("smoke", ["train.epochs=8", "train.lr=2e-3", "train.alpha=1.0", "model.label_free=true"])
    model = build_model(cfg, 10)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.history = fit(model, opt, cfg, *mnist_small)
    return model.eval()


@pytest.fixture(scope="session")
def trained_model(mnist_small):
    """The smoke preset's narrow style-memory net trained for 8 epochs on 4,000 MNIST images: a
    classifier to attack and score in seconds (its blurred reconstructions make a weak detector; the
    tests of detector-aware attacks use the shipped ``fast-mnist``)."""
    torch.manual_seed(0)
    cfg = tiny_config(epochs=8, lr=2e-3)
    model = build_model(cfg, 10)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    fit(model, opt, cfg, *mnist_small)
    return model.eval()
