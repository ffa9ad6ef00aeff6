import hashlib

import numpy as np
import pytest
import torch
from conftest import write_idx

from robustgen.data import DataError, dataset_info, load_dataset, read_idx


def test_read_idx_roundtrip_plain_and_gzip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a-idx3-ubyte", a), 3), a)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a-idx3-ubyte.gz", a, compress=True), 3), a)


def test_read_idx_bad_magic(tmp_path):
    p = tmp_path / "bad"
    p.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(DataError, match="bad magic number") as e:
        read_idx(p, 1)
    assert str(p) in str(e.value)


def test_read_idx_labels_given_for_images(tmp_path):
    p = write_idx(tmp_path / "labels", np.zeros(5, np.uint8))
    with pytest.raises(DataError, match="expected a image file with 3 dimension"):
        read_idx(p, 3)


def test_read_idx_truncated_and_surplus(tmp_path):
    p = write_idx(tmp_path / "img", np.zeros((4, 2, 2), np.uint8))
    raw = p.read_bytes()
    p.write_bytes(raw[:-3])
    with pytest.raises(DataError, match="truncated data"):
        read_idx(p, 3)
    p.write_bytes(raw + b"\x00")
    with pytest.raises(DataError, match="unexpected bytes"):
        read_idx(p, 3)
    p.write_bytes(raw[:6])
    with pytest.raises(DataError, match="truncated header"):
        read_idx(p, 3)


def test_read_idx_corrupt_gzip_and_missing(tmp_path):
    p = tmp_path / "x-idx1-ubyte.gz"
    p.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot read or decompress"):
        read_idx(p, 1)
    with pytest.raises(DataError, match="file not found"):
        read_idx(tmp_path / "nope", 1)


def test_read_idx_md5(tmp_path):
    a = np.arange(6, dtype=np.uint8)
    p = write_idx(tmp_path / "l", a)
    good = hashlib.md5(p.read_bytes()).hexdigest()
    assert np.array_equal(read_idx(p, 1, md5=good), a)
    with pytest.raises(DataError, match="MD5 mismatch"):
        read_idx(p, 1, md5="0" * 32)


def _idx_folder(root, n_train=30, n_test=10, classes=3, mismatch=False):
    rng = np.random.RandomState(0)
    root.mkdir(parents=True, exist_ok=True)
    write_idx(root / "train-images-idx3-ubyte", rng.randint(0, 256, (n_train, 28, 28)))
    write_idx(root / "train-labels-idx1-ubyte", np.arange(n_train - (1 if mismatch else 0)) % classes)
    write_idx(root / "t10k-images-idx3-ubyte.gz", rng.randint(0, 256, (n_test, 28, 28)), compress=True)
    write_idx(root / "t10k-labels-idx1-ubyte.gz", np.arange(n_test) % classes, compress=True)
    return root


def test_idx_folder_dataset(tmp_path):
    root = _idx_folder(tmp_path / "digits3")
    name = f"idx:{root}"
    assert dataset_info(name).num_classes == 3
    x, y = load_dataset(name, "test")
    assert x.shape == (10, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert 0 <= x.min() and x.max() <= 1
    xt, _ = load_dataset(name, "train", val_size=5)
    xv, _ = load_dataset(name, "val", val_size=5)
    assert xt.shape[0] == 25 and xv.shape[0] == 5


def test_image_label_count_mismatch(tmp_path):
    root = _idx_folder(tmp_path / "broken", mismatch=True)
    with pytest.raises(DataError, match="30 images but .* 29 labels"):
        load_dataset(f"idx:{root}", "train", val_size=5)


def test_idx_missing_folder_and_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"idx:{tmp_path / 'nothing'}", "test")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no test images file"):
        load_dataset(f"idx:{tmp_path / 'empty'}", "test")


def _emnist_files(root, n=4):
    """Synthetic EMNIST-letters files: each image is stored transposed, labels 1..26."""
    root.mkdir(parents=True, exist_ok=True)
    upright = np.zeros((n, 28, 28), np.uint8)
    upright[:, 2, :] = 255  # a horizontal bar on row 2 when upright
    labels = (np.arange(n) % 26) + 1
    for part in ("train", "test"):
        write_idx(root / f"emnist-letters-{part}-images-idx3-ubyte.gz", upright.transpose(0, 2, 1), compress=True)
        write_idx(root / f"emnist-letters-{part}-labels-idx1-ubyte", labels)
    return upright, labels


def test_emnist_orientation_and_label_shift(tmp_path):
    upright, labels = _emnist_files(tmp_path / "gzip")  # the official zip's folder name
    x, y = load_dataset("emnist-letters", "test", data_dir=tmp_path)
    assert torch.equal(y, torch.from_numpy(labels - 1).long())
    assert torch.equal((x[:, 0] * 255).round().to(torch.uint8), torch.from_numpy(upright))
    assert x[0, 0, 2].sum() == 28 and x[0, 0, :, 2].sum() == 1  # row 2 is the bar, column 2 is not
    assert dataset_info("emnist-letters").class_names[:3] == ("a", "b", "c")


def test_emnist_missing_files_names_them(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBUSTGEN_DATA", str(tmp_path))
    with pytest.raises(DataError) as e:
        load_dataset("emnist-letters", "test")
    msg = str(e.value)
    assert "emnist-letters-test-images-idx3-ubyte" in msg and "emnist-letters-test-labels-idx1-ubyte" in msg
    assert str(tmp_path) in msg and "--download" in msg


def test_mnist_bundled_splits():
    xt, yt = load_dataset("mnist", "train")
    xv, yv = load_dataset("mnist", "val")
    xs, ys = load_dataset("mnist", "test")
    assert xt.shape == (55000, 1, 28, 28) and xv.shape == (5000, 1, 28, 28) and xs.shape == (10000, 1, 28, 28)
    assert xt.dtype == torch.float32 and 0.0 == xs.min() and xs.max() == 1.0
    assert set(yv.unique().tolist()) == set(range(10))
    # the validation hold-out is disjoint from training and fixed between calls
    full, _ = load_dataset("mnist", "train-full")
    assert full.shape[0] == 60000
    assert torch.equal(load_dataset("mnist", "val")[0], xv)
    assert not any(torch.equal(xv[0], xt[i]) for i in range(0, 55000, 11))


def test_unknown_dataset_and_split():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("cifar", "test")
    with pytest.raises(ValueError, match="unknown split"):
        load_dataset("mnist", "holdout")
