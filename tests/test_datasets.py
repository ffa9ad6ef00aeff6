"""Every named dataset read from small files written here in its real on-disk format (IDX, CIFAR's
pickle batches, SVHN's .mat, PNG folders), never the network."""

import hashlib
import pickle

import numpy as np
import pytest
import torch
from conftest import write_idx

from robustgen.data import DataError, cifar10, dataset_info, fashion_mnist, load_dataset, pixel_stats, svhn
from robustgen.data.colored_mnist import MIN_CONTRAST, colours


def _md5(path) -> str:
    import gzip

    raw = path.read_bytes()
    return hashlib.md5(gzip.decompress(raw) if path.suffix == ".gz" else raw).hexdigest()


def _fashion_files(folder, n_train=60, n_test=20):
    rng = np.random.RandomState(0)
    folder.mkdir(parents=True, exist_ok=True)
    sums = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        img = write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.randint(0, 256, (n, 28, 28)), compress=True)
        lbl = write_idx(folder / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
        sums[f"{prefix}-images-idx3-ubyte"], sums[f"{prefix}-labels-idx1-ubyte"] = _md5(img), _md5(lbl)
    return sums


@pytest.fixture
def no_debian(monkeypatch, tmp_path):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian")


def test_fashion_mnist_from_the_data_folder_checked_by_md5(tmp_path, monkeypatch, no_debian):
    sums = _fashion_files(tmp_path / "FashionMNIST" / "raw")  # where torchvision's download leaves them
    monkeypatch.setattr(fashion_mnist, "MD5", sums)
    x, y = load_dataset("fashion-mnist", "test", data_dir=tmp_path)
    assert x.shape == (20, 1, 28, 28) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert y.tolist() == [i % 10 for i in range(20)]
    assert dataset_info("fashion-mnist").class_names[9] == "Ankle boot"
    xt, _ = load_dataset("fashion-mnist", "train", data_dir=tmp_path)
    assert len(xt) == 54  # 10 % held out for validation below 25,000 training images
    monkeypatch.setattr(fashion_mnist, "MD5", {**sums, "t10k-labels-idx1-ubyte": "0" * 32})
    with pytest.raises(DataError, match="MD5 mismatch"):
        load_dataset("fashion-mnist", "test", data_dir=tmp_path / "FashionMNIST" / "raw")


def test_fashion_mnist_missing_says_the_three_ways(tmp_path, no_debian):
    with pytest.raises(DataError) as e:
        load_dataset("fashion-mnist", "test", data_dir=tmp_path / "empty")
    text = str(e.value)
    assert "--download" in text and "apt-get install dataset-fashion-mnist" in text and "--data-dir" in text
    assert "t10k-images-idx3-ubyte" in text


def test_fashion_mnist_is_found_where_debian_installs_it(tmp_path, monkeypatch):
    sums = _fashion_files(tmp_path / "debian")
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "debian")
    monkeypatch.setattr(fashion_mnist, "MD5", sums)
    x, _ = load_dataset("fashion-mnist", "test", data_dir=tmp_path / "elsewhere")
    assert x.shape == (20, 1, 28, 28)


def _cifar_batch(path, n, seed):
    rng = np.random.RandomState(seed)
    data = {"batch_label": "test", "labels": [int(v) for v in rng.randint(0, 10, n)],
            "data": rng.randint(0, 256, (n, 3072)).astype(np.uint8), "filenames": [f"{i}.png" for i in range(n)]}
    path.write_bytes(pickle.dumps(data, protocol=2))
    return data


def test_cifar10_pickle_batches(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = [_cifar_batch(folder / f"data_batch_{i}", 8, i) for i in range(1, 6)]
    test = _cifar_batch(folder / "test_batch", 6, 9)
    monkeypatch.setattr(cifar10, "MD5", {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()})
    x, y = load_dataset("cifar10", "test", data_dir=tmp_path)
    assert x.shape == (6, 3, 32, 32) and y.tolist() == test["labels"]
    # CIFAR rows are 1024 red, then 1024 green, then 1024 blue values, row-major
    assert x[0, 1, 0, 0] == pytest.approx(test["data"][0, 1024] / 255)
    full, _ = load_dataset("cifar10", "train-full", data_dir=tmp_path)
    assert len(full) == 40 and full[8, 0, 0, 1] == pytest.approx(batches[1]["data"][0, 1] / 255)
    assert dataset_info("cifar10").shape == (3, 32, 32)


def test_cifar10_tampered_pickle_is_refused_not_run(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (folder / "test_batch").write_bytes(pickle.dumps({"data": Payload(), "labels": [0]}))
    with pytest.raises(DataError, match="refusing to load"):
        cifar10.read_batch(folder / "test_batch")
    assert not marker.exists()


def test_svhn_mat_files(tmp_path, monkeypatch):
    import scipy.io

    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, (32, 32, 3, 7)).astype(np.uint8)
    y = np.array([[10], [1], [2], [3], [4], [5], [9]], dtype=np.uint8)
    scipy.io.savemat(tmp_path / "test_32x32.mat", {"X": X, "y": y})
    digest = hashlib.md5((tmp_path / "test_32x32.mat").read_bytes()).hexdigest()
    monkeypatch.setattr(svhn, "MD5", {**svhn.MD5, "test_32x32.mat": digest})
    x, labels = load_dataset("svhn", "test", data_dir=tmp_path)
    assert x.shape == (7, 3, 32, 32) and labels.tolist() == [0, 1, 2, 3, 4, 5, 9]  # 10 stands for the digit 0
    assert x[3, 2, 5, 7] == pytest.approx(X[5, 7, 2, 3] / 255)  # X is (H, W, C, N)
    (tmp_path / "train_32x32.mat").write_bytes(b"MATLAB 5.0 but cut short")
    with pytest.raises(DataError, match="train_32x32.mat"):
        load_dataset("svhn", "train", data_dir=tmp_path)


def _png(path, array):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_folder_dataset_grey_and_rgb(tmp_path):
    rng = np.random.RandomState(0)
    for root, shape in ((tmp_path / "grey", (12, 16)), (tmp_path / "rgb", (12, 16, 3))):
        for part, n in (("train", 6), ("test", 2)):
            for cls in ("cat", "ant"):
                for i in range(n):
                    _png(root / part / cls / f"{i}.png", rng.randint(0, 256, shape).astype(np.uint8))
    info = dataset_info(f"folder:{tmp_path / 'grey'}")
    assert info.class_names == ("ant", "cat") and info.shape == (1, 12, 16)
    assert dataset_info(f"folder:{tmp_path / 'rgb'}").shape == (3, 12, 16)
    x, y = load_dataset(f"folder:{tmp_path / 'rgb'}", "test")
    assert x.shape == (4, 3, 12, 16) and y.tolist() == [0, 0, 1, 1]
    xt, _ = load_dataset(f"folder:{tmp_path / 'rgb'}", "train")
    xv, _ = load_dataset(f"folder:{tmp_path / 'rgb'}", "val")
    assert len(xt) + len(xv) == 12 and len(xv) == 1


def test_folder_dataset_names_the_bad_file(tmp_path):
    for i in range(3):
        _png(tmp_path / "a" / "train" / "x" / f"{i}.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "a" / "train" / "x" / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="notes.txt: not an image file"):
        dataset_info(f"folder:{tmp_path / 'a'}")
    for i in range(3):
        _png(tmp_path / "b" / "train" / "x" / f"{i}.png", np.zeros((8, 8 + (i == 2)), np.uint8))
    with pytest.raises(DataError, match=r"2.png: image is 9x8 pixels, the others 8x8"):
        dataset_info(f"folder:{tmp_path / 'b'}")
    with pytest.raises(DataError, match="does not exist"):
        dataset_info(f"folder:{tmp_path / 'nothing'}")


def test_colored_mnist_is_deterministic_rgb_digits():
    x, y = load_dataset("colored-mnist", "test", limit=200)
    again, _ = load_dataset("colored-mnist", "test", limit=200)
    assert x.shape == (200, 3, 28, 28) and torch.equal(x, again)
    grey, y_grey = load_dataset("mnist", "test", limit=200)
    assert torch.equal(y, y_grey)
    # background = the colour where the digit has no ink, the same in all three channels' roles
    fg, bg = colours(10000, 20181102)
    assert np.abs(fg - bg).max(axis=1).min() >= MIN_CONTRAST
    corner = x[:, :, 0, 0].numpy()
    assert np.abs(corner - bg[:200]).max() < 1 / 255 + 1e-6
    # the colours carry no label: the mean background colour barely differs between classes
    labels = load_dataset("mnist", "test")[1].numpy()
    means = np.stack([bg[labels == c].mean(0) for c in range(10)])
    assert np.ptp(means, axis=0).max() < 0.05


def test_pixel_stats_are_per_channel_training_statistics():
    mean, std = pixel_stats("mnist")
    assert len(mean) == 1 and mean[0] == pytest.approx(0.1307, abs=2e-4) and std[0] == pytest.approx(0.3081, abs=2e-4)
    mean, std = pixel_stats("colored-mnist")
    assert len(mean) == 3 and all(0.4 < m < 0.6 for m in mean)


def test_train_and_validation_never_share_an_image():
    from robustgen.data.splits import split_indices

    xt, _ = load_dataset("mnist", "train")
    xv, _ = load_dataset("mnist", "val")
    # over all 60,000 positions of the training part (comparing pixels would trip over the few
    # images MNIST holds twice): disjoint, together everything, and each split is exactly its positions
    train_idx, val_idx = split_indices(60000, "train", 5000), split_indices(60000, "val", 5000)
    assert len(set(train_idx.tolist()) & set(val_idx.tolist())) == 0
    assert len(set(train_idx.tolist()) | set(val_idx.tolist())) == 60000
    full, _ = load_dataset("mnist", "train-full")
    assert torch.equal(full[train_idx], xt) and torch.equal(full[val_idx], xv)
