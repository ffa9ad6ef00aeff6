import numpy as np
import pandas as pd
from conftest import write_idx
from PIL import Image

from robustgen.cli import main
from robustgen.data import load_dataset


def _files(tmp_path):
    x, _ = load_dataset("mnist", "test", limit=40)
    x = x.numpy()
    np.save(tmp_path / "float.npy", x[:10])  # (N, 1, 28, 28) floats
    np.save(tmp_path / "bytes.npy", (x[10:15, 0] * 255).round().astype(np.uint8))  # (N, 28, 28) uint8
    np.savez(tmp_path / "pack.npz", x=x[15:20, 0], labels=np.arange(5))
    write_idx(tmp_path / "t-idx3-ubyte", (x[20:25, 0] * 255).round().astype(np.uint8))
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    for i in range(4):
        Image.fromarray((x[25 + i, 0] * 255).round().astype(np.uint8)).save(pngs / f"{i}.png")
    Image.fromarray(np.zeros((20, 20), dtype=np.uint8)).save(pngs / "small.png")  # wrong size
    (pngs / "notes.txt").write_text("not an image")  # ignored: not a .png
    return x


def test_detect_scores_every_kind_of_file_and_reports_bad_ones(tmp_path, capsys):
    _files(tmp_path)
    out = tmp_path / "scores.csv"
    inputs = [str(tmp_path / n) for n in ("float.npy", "bytes.npy", "pack.npz", "t-idx3-ubyte", "pngs", "nope.npy")]
    code = main(["detect", "--checkpoint", "fast-mnist", "--n-val", "1000", "--input", *inputs, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2  # some files could not be read ...
    assert "bytes.npy: 8-bit (uint8) images; pass --uint8" in err and "small.png: image is 20x20" in err
    assert "nope.npy: no such file or folder" in err
    table = pd.read_csv(out)  # ... and the others were still scored
    assert list(table.columns) == ["source", "index", "prediction", "confidence", "score", "threshold", "flagged"]
    assert len(table) == 10 + 5 + 5 + 4
    assert table["index"].tolist()[:10] == list(range(10))
    assert (table["flagged"] == (table["score"] > table["threshold"])).all()
    assert (table["prediction"].between(0, 9)).all() and table["confidence"].between(0, 1).all()
    png_rows = table[table["source"].str.endswith(".png")]
    assert sorted(png_rows["source"].map(lambda s: s.rsplit("/", 1)[1])) == ["0.png", "1.png", "2.png", "3.png"]
    # the images are read the right way round: the model classifies them as their labels say
    y = load_dataset("mnist", "test", limit=40)[1].numpy()
    assert (table[table["source"].str.endswith("float.npy")]["prediction"].to_numpy() == y[:10]).mean() >= 0.9

    out2 = tmp_path / "bytes.csv"
    assert main(["detect", "--checkpoint", "fast-mnist", "--n-val", "1000", "--input", inputs[1], "--uint8", "--out", str(out2)]) == 0
    assert len(pd.read_csv(out2)) == 5
    assert main(["detect", "--checkpoint", "fast-mnist", "--n-val", "1000", "--input", inputs[1], "--uint8", "--out", str(out2)]) == 2
    assert "already exists" in capsys.readouterr().err  # never overwritten


def test_fail_on_flag_gates_a_pipeline(tmp_path):
    rng = np.random.RandomState(0)
    np.save(tmp_path / "noise.npy", rng.rand(8, 28, 28).astype(np.float32))  # nothing like a digit
    args = ["detect", "--checkpoint", "fast-mnist", "--n-val", "1000", "--input", str(tmp_path / "noise.npy"), "--fail-on-flag"]
    assert main(args + ["--out", str(tmp_path / "a.csv")]) == 1
    assert pd.read_csv(tmp_path / "a.csv")["flagged"].all()
    assert main(args[:-1] + ["--out", str(tmp_path / "b.csv")]) == 0  # without the flag: reported, not failed
