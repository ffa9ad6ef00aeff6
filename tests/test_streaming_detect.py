"""Streaming ``detect``: bounded chunks, rows on disk as they are scored, resume without scoring twice."""

import gzip
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import write_idx

from robustgen import ConfidenceDetector, load_model
from robustgen.cli import main
from robustgen.data.inputs import iter_batches, open_inputs


@pytest.fixture(scope="module")
def det(mnist_small):
    return ConfidenceDetector(load_model("fast-mnist")).fit(mnist_small[1][0][:300])


@pytest.fixture(scope="module")
def images():
    x = torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0)).numpy()
    return (x * 255).round().astype(np.uint8)


def test_batches_never_exceed_the_chunk_and_skip_continues_exactly(tmp_path, images):
    np.save(tmp_path / "a.npy", images[:700])
    write_idx(tmp_path / "b-idx3-ubyte.gz", images[700:, 0], compress=True)
    paths = [tmp_path / "a.npy", tmp_path / "b-idx3-ubyte.gz"]
    sources, errors = open_inputs(paths, uint8=True)
    assert not errors and sum(s.n for s in sources) == 1000
    whole = list(iter_batches(sources, chunk=128))
    assert max(len(b.sources) for b in whole) <= 128
    rows = [(s, i) for b in whole for s, i in zip(b.sources, b.indices)]
    assert len(rows) == 1000 and rows[699] == (str(paths[0]), 699) and rows[700] == (str(paths[1]), 0)
    assert np.array_equal(np.concatenate([b.images for b in whole]), images.astype(np.float32) / 255)
    for skip in (0, 1, 127, 128, 699, 700, 999):
        rest = list(iter_batches(open_inputs(paths, uint8=True)[0], chunk=128, skip=skip))
        assert [(s, i) for b in rest for s, i in zip(b.sources, b.indices)] == rows[skip:]


def test_a_bad_value_at_the_end_of_a_file_skips_it_whole_before_any_row(tmp_path, det, images):
    x = images.astype(np.float32) / 255
    x[-1, 0, 0, 0] = np.nan
    np.save(tmp_path / "bad.npy", x)
    np.save(tmp_path / "good.npy", x[:5])
    errors = []
    summary = det.detect_files([tmp_path / "bad.npy", tmp_path / "good.npy"], tmp_path / "o.csv", chunk=100,
                               on_error=errors.append)
    assert summary.n == 5 and len(errors) == 1 and "bad.npy: images contain NaN" in errors[0]
    assert set(pd.read_csv(tmp_path / "o.csv")["source"]) == {str(tmp_path / "good.npy")}


class _Crash(RuntimeError):
    pass


def test_rows_survive_a_crash_and_resume_scores_each_input_once(tmp_path, det, images):
    np.save(tmp_path / "x.npy", images)
    folder = tmp_path / "pngs"
    folder.mkdir()
    from PIL import Image

    for i in range(30):
        Image.fromarray(images[i, 0]).save(folder / f"{i:02d}.png")
    (folder / "07.png").write_bytes(b"broken")  # skipped in both runs, by name
    inputs = [tmp_path / "x.npy", folder]
    full = det.detect_files(inputs, tmp_path / "full.csv", uint8=True, chunk=64)
    assert full.n == 1029 and len(full.errors) == 1

    scored, real = [], det.detect

    def crashing(x):
        if len(scored) == 5:
            raise _Crash
        scored.append(len(x))
        return real(x)

    det.detect = crashing
    try:
        with pytest.raises(_Crash):
            det.detect_files(inputs, tmp_path / "cut.csv", uint8=True, chunk=64)
    finally:
        del det.detect
    assert len(pd.read_csv(tmp_path / "cut.csv")) == 5 * 64  # every finished chunk is on disk
    with open(tmp_path / "cut.csv", "a") as f:
        f.write(f"{tmp_path / 'x.npy'},320,3,0.9")  # a row torn by the crash
    with pytest.raises(FileExistsError):
        det.detect_files(inputs, tmp_path / "cut.csv", uint8=True)
    counted = []
    resumed = det.detect_files(inputs, tmp_path / "cut.csv", uint8=True, chunk=100, resume=True,
                               on_progress=counted.append)
    assert resumed.resumed == 320 and resumed.n == 1029 and counted[0] == 320
    assert (tmp_path / "cut.csv").read_text() == (tmp_path / "full.csv").read_text()
    again = det.detect_files(inputs, tmp_path / "cut.csv", uint8=True, resume=True)  # finished: nothing more
    assert again.n == 1029 and (tmp_path / "cut.csv").read_text() == (tmp_path / "full.csv").read_text()


def test_resume_refuses_other_inputs_and_another_threshold(tmp_path, det, images, mnist_small):
    np.save(tmp_path / "x.npy", images[:200])
    np.save(tmp_path / "y.npy", images[200:400])
    det.detect_files([tmp_path / "x.npy"], tmp_path / "o.csv", uint8=True, chunk=50)
    lines = (tmp_path / "o.csv").read_text().splitlines()
    (tmp_path / "o.csv").write_text("\n".join(lines[:101]) + "\n")  # cut back by hand: as a CSV with no sidecar
    (tmp_path / "o.csv.sha256").unlink()
    before = (tmp_path / "o.csv").read_text()
    with pytest.raises(ValueError, match="same --input"):
        det.detect_files([tmp_path / "y.npy"], tmp_path / "o.csv", uint8=True, resume=True)
    other = ConfidenceDetector(det.model).fit(mnist_small[1][0][:300], fpr=0.2)
    with pytest.raises(ValueError, match="threshold"):
        other.detect_files([tmp_path / "x.npy"], tmp_path / "o.csv", uint8=True, resume=True)
    assert (tmp_path / "o.csv").read_text() == before  # a refused resume writes nothing


def test_a_truncated_gzip_idx_file_is_named_and_skipped_whole(tmp_path, det, images):
    write_idx(tmp_path / "t-idx3-ubyte.gz", images[:300, 0], compress=True)
    data = (tmp_path / "t-idx3-ubyte.gz").read_bytes()
    (tmp_path / "cut-idx3-ubyte.gz").write_bytes(data[: len(data) * 2 // 3])
    raw = gzip.decompress(data)
    (tmp_path / "short-idx3-ubyte").write_bytes(raw[:-10])
    errors = []
    summary = det.detect_files([tmp_path / "cut-idx3-ubyte.gz", tmp_path / "short-idx3-ubyte", tmp_path / "t-idx3-ubyte.gz"],
                               tmp_path / "o.csv", chunk=64, on_error=errors.append)
    assert summary.n == 300 and len(errors) == 2 and "cut-idx3-ubyte.gz" in errors[0] and "truncated" in errors[1]


def test_detect_killed_with_sigkill_and_resumed_equals_an_uninterrupted_run(tmp_path, det):
    x = (torch.rand(12000, 28, 28, generator=torch.Generator().manual_seed(1)) * 255).round().to(torch.uint8).numpy()
    np.save(tmp_path / "x.npy", x)
    det.save(tmp_path / "det.pt")
    base = [sys.executable, "-m", "robustgen", "detect", "--detector", str(tmp_path / "det.pt"), "--input",
            str(tmp_path / "x.npy"), "--uint8", "--chunk", "500", "--quiet", "--out"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(base + [str(tmp_path / "cut.csv")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if (tmp_path / "cut.csv").exists() and (tmp_path / "cut.csv").stat().st_size > 80_000:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed; give it more images"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    cut = len(pd.read_csv(tmp_path / "cut.csv"))
    assert 0 < cut < 12000
    assert subprocess.run(base + [str(tmp_path / "cut.csv"), "--resume"], env=env, capture_output=True).returncode == 0
    assert main(base[3:] + [str(tmp_path / "full.csv")]) == 0
    assert (tmp_path / "cut.csv").read_text() == (tmp_path / "full.csv").read_text()
    table = pd.read_csv(tmp_path / "cut.csv")
    assert table["index"].tolist() == list(range(12000))
