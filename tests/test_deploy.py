"""The guarded model deploys without robustgen: one graph (TorchScript, ONNX) whose outputs are the
class logits, the score and the reject decision, equal to the Python detector's."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from robustgen import load_dataset, load_model, make_detector
from robustgen.cli import main
from robustgen.detectors.deploy import export_guarded

SERVE = """
import json, sys
import numpy as np
{load}
x = np.load(sys.argv[2])
logits, score, rejected = run(x)
assert "robustgen" not in sys.modules, "the server imported robustgen"
np.savez(sys.argv[3], logits=logits, score=score, rejected=rejected)
"""
TORCH = """
import torch
module = torch.jit.load(sys.argv[1])
def run(x):
    with torch.no_grad():
        return [t.numpy() for t in module(torch.from_numpy(x))]
"""
ORT = """
import onnxruntime
session = onnxruntime.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
def run(x):
    return session.run(["logits", "score", "rejected"], {"images": x})
"""


def serve(tmp_path, graph, x: np.ndarray, fmt: str) -> dict:
    """Run the exported graph in a fresh, isolated interpreter that never imports robustgen."""
    script = tmp_path / "serve.py"
    script.write_text(SERVE.format(load=TORCH if fmt == "torchscript" else ORT))
    np.save(tmp_path / "x.npy", x)
    subprocess.run([sys.executable, "-I", str(script), str(graph), str(tmp_path / "x.npy"), str(tmp_path / "o.npz")],
                   check=True, cwd=tmp_path, capture_output=True)
    return dict(np.load(tmp_path / "o.npz"))


@pytest.fixture(scope="module")
def data():
    x_val, _ = load_dataset("mnist", "val", limit=500)
    x, _ = load_dataset("mnist", "test", limit=400)
    noisy = (x[:200] + 0.5 * torch.rand(x[:200].shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    return x_val, torch.cat([x, noisy])  # clean and noisy test images: both decisions occur


@pytest.mark.parametrize("score", ["confidence", "recon", "mahalanobis"])
def test_the_exported_torchscript_graph_equals_the_detector_in_a_process_without_robustgen(tmp_path, data, score):
    x_val, x = data
    det = make_detector(load_model("fast-mnist"), score).fit(x_val, fpr=0.05)
    manifest = json.loads(export_guarded(det, tmp_path / "out", "guard", check=x[:100]).read_text())
    assert manifest["check"]["predictions_differ"] == 0 and manifest["check"]["flags_differ"] == 0
    assert manifest["threshold"] == det.threshold and manifest["fpr"] == 0.05 and manifest["score"] == score
    assert manifest["source"]["weights_file_sha256"] == load_model("fast-mnist").meta["manifest"]["sha256"]
    got = serve(tmp_path, tmp_path / "out" / "guard.pt", x.numpy(), "torchscript")
    report, flagged = det.detect(x)
    assert np.abs(got["score"].astype(np.float64) - report["scores"]).max() < 1e-5
    assert np.array_equal(got["logits"].argmax(1), report["predictions"]) and np.array_equal(got["rejected"], flagged)
    assert 0 < flagged.sum() < len(x)  # both decisions were exercised


def test_the_exported_onnx_graph_equals_the_detector(tmp_path, data):
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    x_val, x = data
    det = make_detector(load_model("fast-mnist"), "confidence").fit(x_val, fpr=0.05)
    export_guarded(det, tmp_path / "out", "guard", fmt="onnx", check=x[:100])
    got = serve(tmp_path, tmp_path / "out" / "guard.onnx", x.numpy(), "onnx")
    report, flagged = det.detect(x)
    assert np.abs(got["score"].astype(np.float64) - report["scores"]).max() < 1e-5
    assert np.array_equal(got["rejected"], flagged) and np.array_equal(got["logits"].argmax(1), report["predictions"])


def test_export_cli_from_a_saved_detector_and_its_refusals(tmp_path, data, capsys):
    x_val, _ = data
    det = make_detector(load_model("robust-mnist"), "confidence").fit(x_val, fpr=0.05)
    det.save(tmp_path / "det.pt")
    args = ["export", "--format", "torchscript", "--detector", str(tmp_path / "det.pt"), "--name", "g",
            "--out", str(tmp_path / "out"), "--n-check", "200"]
    assert main(args) == 0
    record = json.loads((tmp_path / "out" / "g.json").read_text())
    from robustgen.integrity import sha256_file

    assert record["sha256"] == sha256_file(tmp_path / "out" / "g.pt") and record["check"]["n"] == 200
    assert record["source"]["detector_file_sha256"] == sha256_file(tmp_path / "det.pt")
    assert main(args) == 2 and "already exists" in capsys.readouterr().err  # never written over
    assert main(args + ["--score", "recon"]) == 2
    assert "cannot be used with --detector" in capsys.readouterr().err
    assert main(["export", "--format", "torchscript", "--name", "h", "--out", str(tmp_path / "o2")]) == 2
    assert "needs --detector FILE, or --checkpoint MODEL and --score NAME" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()
