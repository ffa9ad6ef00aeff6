"""The RGB path end to end, as a user runs it: train smoke-rgb on colored-mnist, then eval, attack (PGD
and a detector-aware attack), reproduce, detect on a folder of RGB PNGs, export and load_model."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

import robustgen
from robustgen.cli import main


@pytest.fixture(scope="module")
def rgb_run(tmp_path_factory):
    runs = tmp_path_factory.mktemp("rgb") / "runs"
    assert main(["train", "--config", "smoke-rgb", "--runs-dir", str(runs), "--quiet"]) == 0  # about 20 s
    (run,) = runs.iterdir()
    return run


def test_rgb_model_trains_and_evaluates(rgb_run, capsys):
    model = robustgen.load_model(rgb_run)
    assert model.input_shape == (3, 28, 28) and len(model.spec.mean) == 3
    assert main(["eval", "--checkpoint", str(rgb_run), "--split", "val"]) == 0
    result = json.loads((rgb_run / "eval-val.json").read_text())
    assert result["n"] == 5000 and result["accuracy"] > 0.5


def test_rgb_attack_and_reproduce(rgb_run, tmp_path):
    out = tmp_path / "attack"
    assert main(["attack", "--checkpoint", str(rgb_run), "--n-val", "500", "--method", "pgd,adaptive-pgd", "--eps", "0.1", "--n", "30",
                 "--steps", "3", "--search-steps", "1", "--score", "recon,confidence", "--sanity-n", "10",
                 "--out", str(out), "--quiet"]) == 0
    table = pd.read_csv(out / "detection.csv")
    assert len(table) == 2 + 2 and (table["n"] == 30).all()
    assert (out / "roc.png").is_file() and (out / "security_curve.png").is_file()
    rep = tmp_path / "reproduce"
    assert main(["reproduce", "--checkpoint", str(rgb_run), "--experiments", "reconstruction,misclassified,interpolation",
                 "--out", str(rep)]) == 0  # neighbours: covered on MNIST in test_cli
    for name in ("reconstruction.png", "misclassified.png", "interpolation.png", "style_transfer.png"):
        assert (rep / name).is_file(), name


def test_rgb_detect_on_png_folder_skips_grey_files(rgb_run, tmp_path, capsys):
    from PIL import Image

    x, _ = robustgen.load_dataset("colored-mnist", "test", limit=4)
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, img in enumerate(x):
        Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(folder / f"{i}.png")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(folder / "grey.png")
    out = tmp_path / "scores.csv"
    assert main(["detect", "--checkpoint", str(rgb_run), "--n-val", "500", "--input", str(folder), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "grey.png: a greyscale image, the model expects 3 channels" in err
    rows = pd.read_csv(out)
    assert len(rows) == 4 and rows["source"].str.endswith(".png").all()


def test_rgb_export_and_load(rgb_run, tmp_path):
    from robustgen.pretrained import load_pretrained

    assert main(["export", "--checkpoint", str(rgb_run), "--name", "rgb", "--out", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "rgb.json").read_text())
    assert manifest["input_shape"] == [3, 28, 28] and len(manifest["normalisation"]["mean"]) == 3
    loaded = load_pretrained("rgb", folder=tmp_path)
    original = robustgen.load_model(rgb_run)
    x = torch.rand(5, 3, 28, 28)
    assert torch.allclose(loaded(x), original(x), atol=5e-2)  # float16 weights
    with pytest.raises(ValueError, match=r"\(N, 3, 28, 28\).*got \(5, 1, 28, 28\)"):
        robustgen.ReconstructionDetector(loaded).fit(torch.rand(5, 1, 28, 28))
