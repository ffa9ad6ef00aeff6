"""A guarded model that deploys without robustgen: classifier + detector score + frozen threshold as
one TorchScript graph (or ONNX graph), run by a serving stack that has only torch (or onnxruntime).

    export_guarded(det, "deploy/", "robust-mnist-guarded", check=x_val[:1000])

writes ``NAME.pt`` (TorchScript; ``torch.jit.load`` runs it) or ``NAME.onnx``, and ``NAME.json``, a
manifest recording the SHA-256 of the exported file and of the source weights, the score, the
threshold and the false-positive rate it was fitted at, and a check of the exported graph against
the Python detector on ``check`` (max score difference, agreement of predictions and flags).

The graph takes float32 images (N, C, H, W) in [0, 1] and returns three outputs:
``logits`` (N, K), ``score`` (N,) (higher = more suspicious) and ``rejected`` (N,) bool, which is
``score > threshold`` exactly as ``Detector.detect`` flags.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..integrity import sha256_file, sha256_state
from .detector import as_images

FORMATS = ("torchscript", "onnx")
OUTPUTS = ["logits", "score", "rejected"]


class DeployedGuard(nn.Module):
    """``x -> (logits, score, rejected)`` of a fitted detector, its threshold a constant."""

    def __init__(self, detector):
        super().__init__()
        if detector.threshold is None:
            raise ValueError("the detector has no threshold yet: call fit(x_clean, fpr=...) first")
        self.model, self.scorer, self.threshold = detector.model.eval(), detector.scorer, float(detector.threshold)
        self.autoencoder = getattr(detector.scorer, "autoencoder", None)  # a submodule, so its weights travel

    def forward(self, x: torch.Tensor):
        scores, logits = self.scorer.evaluate(self.model, x)
        return logits, scores, scores > self.threshold


@contextlib.contextmanager
def _quiet_jit():
    """torch 2.14 marks TorchScript deprecated (FutureWarning) in favour of torch.export; TorchScript
    is still what a serving stack with only torch loads, so robustgen writes it and says so once, in
    docs/operations.md, rather than on every export."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit.*deprecated")
        warnings.filterwarnings("ignore", category=DeprecationWarning,
                                message=r".*(legacy TorchScript-based ONNX|feature will be removed)")
        yield


def _trace_and_save(guard: DeployedGuard, example: torch.Tensor, path: Path) -> None:
    with _quiet_jit(), torch.no_grad():
        torch.jit.save(torch.jit.freeze(torch.jit.trace(guard.eval(), example, check_trace=False)), str(path))


def _write_onnx(guard: DeployedGuard, example: torch.Tensor, path: Path) -> None:
    try:
        import onnx  # noqa: F401 - the exporter needs it
    except ImportError:
        raise ValueError("--format onnx needs the onnx extra: pip install 'robustgen[onnx]'") from None
    with _quiet_jit():  # the TorchScript-based exporter: the torch.export one needs onnxscript besides
        torch.onnx.export(guard.eval(), (example,), str(path), input_names=["images"], output_names=OUTPUTS,
                          dynamic_axes={"images": {0: "n"}, **{o: {0: "n"} for o in OUTPUTS}}, dynamo=False)


def _run_exported(path: Path, fmt: str, x: torch.Tensor, batch: int = 500):
    """(logits, scores, rejected) as numpy from the exported file, loaded as a server would."""
    parts = []
    if fmt == "torchscript":
        with _quiet_jit():
            module = torch.jit.load(str(path), map_location="cpu")
        with torch.no_grad():
            parts = [[t.numpy() for t in module(x[i:i + batch])] for i in range(0, len(x), batch)]
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        parts = [session.run(OUTPUTS, {"images": x[i:i + batch].numpy()}) for i in range(0, len(x), batch)]
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))


def compare_with_detector(detector, path: Path, fmt: str, x) -> dict:
    """How the exported graph agrees with the Python detector on images ``x``."""
    x = as_images(x, detector.model, torch.device("cpu"))
    logits, scores, rejected = _run_exported(path, fmt, x)
    report, flagged = detector.detect(x)
    return {"n": int(len(x)), "max_score_difference": float(np.abs(scores.astype(np.float64) - report["scores"]).max()),
            "predictions_differ": int((logits.argmax(1) != report["predictions"]).sum()),
            "flags_differ": int((rejected != flagged).sum())}


def weights_file_sha256(model) -> str | None:
    """SHA-256 of the file a model's weights were loaded from: a shipped model's (its manifest's), or
    a checkpoint's; None for a model that came from memory."""
    meta = getattr(model, "meta", {}) or {}
    if meta.get("manifest"):
        return meta["manifest"]["sha256"]
    path = meta.get("path")
    return sha256_file(path) if path and Path(path).is_file() else None


def export_guarded(detector, out_dir: str | os.PathLike, name: str, *, fmt: str = "torchscript", check=None,
                   detector_file: str | os.PathLike | None = None) -> Path:
    """Write the guarded graph and its manifest into ``out_dir`` (files must not exist); return the
    manifest's path. ``check``: images to compare the exported graph with the detector on (refused
    when a prediction or a flag differs). ``detector_file``: the saved detector it came from, whose
    SHA-256 the manifest records beside the weights'."""
    from ..pretrained import check_model_name

    check_model_name(name)
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if detector.device.type != "cpu":
        raise ValueError("export from a detector on the CPU (Detector.load(path, 'cpu'))")
    out = Path(out_dir)
    graph, manifest_path = out / f"{name}.{'pt' if fmt == 'torchscript' else 'onnx'}", out / f"{name}.json"
    for p in (graph, manifest_path):
        if p.exists():
            raise FileExistsError(f"{p} already exists; remove it or choose another name")
    out.mkdir(parents=True, exist_ok=True)
    guard = DeployedGuard(detector)
    example = torch.rand(2, *detector.model.input_shape, generator=torch.Generator().manual_seed(0))
    tmp = out / f".{graph.name}.export"
    try:
        if fmt == "torchscript":
            _trace_and_save(guard, example, tmp)
        else:
            _write_onnx(guard, example, tmp)
        checked = compare_with_detector(detector, tmp, fmt, check) if check is not None else None
        if checked and (checked["predictions_differ"] or checked["flags_differ"]):
            raise ValueError(f"the exported graph disagrees with the detector on {checked['predictions_differ']} "
                             f"predictions and {checked['flags_differ']} flags of {checked['n']} images; not exported")
        meta = getattr(detector.model, "meta", {}) or {}
        manifest = {
            "format": f"robustgen-guarded-{fmt}", "version": 1, "name": name, "file": graph.name,
            "sha256": sha256_file(tmp), "inputs": {"images": {"shape": ["N", *detector.model.input_shape],
                                                              "dtype": "float32", "range": [0.0, 1.0]}},
            "outputs": {"logits": "(N, K) float32", "score": "(N,) float32, higher = more suspicious",
                        "rejected": "(N,) bool: score > threshold"},
            "score": detector.score_name, "threshold": detector.threshold, "fpr": detector.fpr,
            "fit_fpr": detector.fit_fpr_, "classes": int(detector.model.num_classes),
            "source": {"model": str(meta.get("path")), "model_sha256": sha256_state(detector.model),
                       "weights_file_sha256": weights_file_sha256(detector.model),
                       "detector_file_sha256": sha256_file(detector_file) if detector_file else None,
                       "autoencoder_sha256": sha256_state(guard.autoencoder) if guard.autoencoder is not None else None},
            "check": checked, "torch": torch.__version__,
        }
        os.replace(tmp, graph)
        tmp_manifest = out / f".{name}.json.export"
        tmp_manifest.write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(tmp_manifest, manifest_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        (out / f".{name}.json.export").unlink(missing_ok=True)
        if graph.exists() and not manifest_path.exists():
            graph.unlink()
        raise
    return manifest_path
