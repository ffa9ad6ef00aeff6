"""Files that prove what they hold: every kind of file robustgen writes and reads back is refused,
with one line naming it, when one byte of it has changed."""

import io
import json
from types import SimpleNamespace

import pytest
import torch

from robustgen import ConfidenceDetector, Detector, load_model
from robustgen.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from robustgen.cli import main
from robustgen.cli.resume import FIXED
from robustgen.integrity import IntegrityError, seal, sha256_state, sha256_tensors, verify


def positions(n: int) -> list[int]:
    """Where to flip: the first and last bytes, the zip end record and the seal, and 40 spread over the rest."""
    special = [0, 1, n - 1, n - 2, n - 81, n - 82, n - 83, n - 84, n - 85, n - 81 - 22, n - 81 - 20, n - 81 - 12]
    return sorted({p for p in special + [i * n // 40 for i in range(40)] if 0 <= p < n})


def flipped(path, pos: int):
    data = bytearray(path.read_bytes())
    data[pos] ^= 0x10
    out = path.with_name(f"flipped-{pos}-{path.name}")
    out.write_bytes(bytes(data))
    return out


def test_a_sealed_file_is_still_a_plain_torch_file_and_every_single_byte_flip_is_caught():
    buffer = io.BytesIO()
    torch.save({"w": torch.arange(10.0)}, buffer)
    data = seal(buffer.getvalue())
    assert torch.equal(torch.load(io.BytesIO(data), weights_only=True)["w"], torch.arange(10.0))
    assert verify(data, "f") == "sealed" and verify(buffer.getvalue(), "f") == "legacy"
    for i in range(len(data)):  # every byte of a small file, each bit position in turn
        bad = bytearray(data)
        bad[i] ^= 1 << (i % 8)
        with pytest.raises(IntegrityError, match="refused"):
            verify(bytes(bad), "f")


@pytest.fixture(scope="module")
def model():
    return load_model("fast-mnist")


def test_a_checkpoint_with_one_flipped_byte_is_refused(tmp_path, model):
    path = save_checkpoint(tmp_path / "checkpoint.pt", model=model, epoch=1, config=model.meta["config"],
                           dataset=model.meta["dataset"])
    assert load_checkpoint(path)["epoch"] == 1
    for pos in positions(path.stat().st_size):
        with pytest.raises(CheckpointError, match=f"flipped-{pos}-checkpoint.pt"):
            load_checkpoint(flipped(path, pos))


def test_a_saved_detector_with_one_flipped_byte_is_refused(tmp_path, model, mnist_small):
    det = ConfidenceDetector(model).fit(mnist_small[1][0][:200])
    path = det.save(tmp_path / "det.pt")
    assert Detector.load(path).threshold == det.threshold
    for pos in positions(path.stat().st_size):
        with pytest.raises(CheckpointError, match="refused"):
            Detector.load(flipped(path, pos))


def test_the_cli_refuses_a_flipped_detector_in_one_line(tmp_path, model, mnist_small, capsys):
    import numpy as np

    path = ConfidenceDetector(model).fit(mnist_small[1][0][:200]).save(tmp_path / "det.pt")
    np.save(tmp_path / "x.npy", mnist_small[1][0][:4].numpy())
    bad = flipped(path, path.stat().st_size // 2)
    rc = main(["detect", "--detector", str(bad), "--input", str(tmp_path / "x.npy"), "--out", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and bad.name in err[0] and "SHA-256" in err[0]
    assert not (tmp_path / "o.csv").exists()


def test_a_shipped_weights_file_with_one_flipped_byte_is_refused(tmp_path):
    from robustgen.pretrained import load_pretrained, pretrained_dir

    manifest = json.loads((pretrained_dir() / "fast-mnist.json").read_text())
    weights = (pretrained_dir() / manifest["weights"]).read_bytes()
    for pos in (0, len(weights) // 2, len(weights) - 1):
        bad = bytearray(weights)
        bad[pos] ^= 0x10
        (tmp_path / "fast-mnist.pt").write_bytes(bytes(bad))
        (tmp_path / "fast-mnist.json").write_text(json.dumps(manifest))
        with pytest.raises(CheckpointError, match="corrupt: SHA-256"):
            load_pretrained("fast-mnist", folder=tmp_path)


def test_weight_and_data_digests_tell_models_and_data_apart(model):
    other = load_model("robust-mnist")
    assert sha256_state(model) == sha256_state(load_model("fast-mnist")) != sha256_state(other)
    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.arange(4)
    assert sha256_tensors(x, y) == sha256_tensors(x.clone(), y.clone())
    x2 = x.clone()
    x2[0, 0, 0, 0] += 1e-7
    assert sha256_tensors(x2, y) != sha256_tensors(x, y) != sha256_tensors(x, y + 1)


def test_a_detect_csv_changed_after_it_was_written_is_not_resumed(tmp_path, model, mnist_small):
    import numpy as np

    det = ConfidenceDetector(model).fit(mnist_small[1][0][:200])
    np.save(tmp_path / "x.npy", mnist_small[1][0][:300].numpy())
    det.detect_files([tmp_path / "x.npy"], tmp_path / "o.csv", chunk=100)
    good = (tmp_path / "o.csv").read_bytes()
    for pos in (3, len(good) // 2, len(good) - 2):
        bad = bytearray(good)
        bad[pos] ^= 0x01
        (tmp_path / "o.csv").write_bytes(bytes(bad))
        with pytest.raises(ValueError, match="o.csv: SHA-256 of its first"):
            det.detect_files([tmp_path / "x.npy"], tmp_path / "o.csv", chunk=100, resume=True)
    (tmp_path / "o.csv").write_bytes(good)
    assert det.detect_files([tmp_path / "x.npy"], tmp_path / "o.csv", resume=True).n == 300


def test_a_kept_record_or_a_report_file_changed_afterwards_is_refused(tmp_path):
    from robustgen.cli.resume import apply_record, write_record
    from robustgen.evaluation.compare import read_report
    from robustgen.integrity import write_checksums

    args = SimpleNamespace(**{k: None for k in FIXED}, resume=str(tmp_path / "run"))
    write_record(tmp_path / "run", args, "robust-mnist", {"model_sha256": "a" * 64})
    text = (tmp_path / "run" / "run.json").read_text()
    apply_record(args, {k: None for k in FIXED})  # intact: read
    (tmp_path / "run" / "run.json").write_text(text.replace('"robust-mnist"', '"fast-mnist"'))
    with pytest.raises(ValueError, match="run.json: SHA-256 does not match"):
        apply_record(SimpleNamespace(**{k: None for k in FIXED}, resume=str(tmp_path / "run")), {k: None for k in FIXED})

    report = tmp_path / "report"
    report.mkdir()
    (report / "detection.csv").write_text("method,eps,score\npgd,0.3,confidence\n")
    (report / "worst_case.csv").write_text("eps,score,undetected_success_rate\n0.3,confidence,0.006\n")
    (report / "security_curve.csv").write_text("score,eps,robust_acc,undetected_success_rate\nconfidence,0.3,0.9,0.006\n")
    write_checksums(report, ["detection.csv", "worst_case.csv", "security_curve.csv"])
    assert len(read_report(report)["worst_case"]) == 1
    (report / "worst_case.csv").write_text("eps,score,undetected_success_rate\n0.3,confidence,0.005\n")
    with pytest.raises(ValueError, match="worst_case.csv: SHA-256 does not match checksums.sha256"):
        read_report(report)
