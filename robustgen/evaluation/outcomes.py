"""One attack's outcome and the record a benchmark run keeps of all of them."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from ..attacks import make_attack, run_attack
from ..classifier import check_logits
from ..detectors.detector import Detector, make_detector, threshold_at_fpr
from ..detectors.registry import AUTOENCODER_SCORES
from ..inference import encode_dataset
from ..model import StyleMemoryNet
from .metrics import STANDARD_FPRS


@dataclass
class BenchmarkResult:
    rows: list[dict] = field(default_factory=list)  # one per (method, eps, score)
    roc: list[dict] = field(default_factory=list)  # long format: method, eps, score, fpr, tpr, threshold
    misclassification: list[dict] = field(default_factory=list)  # one per score, on clean test data
    seconds: dict = field(default_factory=dict)  # attack wall time per (method, eps[, score])
    labels: np.ndarray | None = None  # (N,) true labels of the attacked inputs
    # (method, eps, score) -> (N,) bool: that attack made the input misclassified and unflagged
    broken: dict = field(default_factory=dict)
    # (method, eps, target score or None) -> (N,) bool: correct clean input that the attack misclassified
    fooled: dict = field(default_factory=dict)
    correct: np.ndarray | None = None  # (N,) bool: classified correctly when clean
    clean_flagged: dict = field(default_factory=dict)  # score -> (N,) bool: the clean input is flagged
    sanity: list[dict] = field(default_factory=list)  # check, passed, detail (see robustgen.sanity)
    budgets: dict = field(default_factory=dict)  # method -> its per-input budget in words
    # (method, eps, target score or None) -> (N,) bool: the inputs the attack ran on (all but in a cascade)
    attacked: dict = field(default_factory=dict)
    cascade: bool = False  # each attack ran only on the inputs still standing (evaluation.cascade)
    order: list = field(default_factory=list)  # the methods in the order they ran
    gradients: list[dict] = field(default_factory=list)  # per score: its input gradient's status (see .gradients)


def predict_and_errors(model, x: torch.Tensor, y: torch.Tensor, batch_size: int):
    """Predictions and per-image L2 reconstruction errors under the predicted and the true one-hot label
    (NaN for a classifier with no decoder: any other than robustgen's)."""
    if not isinstance(model, StyleMemoryNet):
        device = next(model.parameters()).device
        with torch.no_grad():
            parts = []
            for i in range(0, x.shape[0], batch_size):
                logits = model(x[i:i + batch_size].to(device))
                check_logits(logits, len(logits), model.num_classes)
                parts.append(logits.argmax(dim=1).cpu())
        pred = torch.cat(parts).numpy()
        nan = np.full(len(pred), np.nan)
        return pred, nan, nan.copy()
    enc = encode_dataset(model, x, y, batch_size)
    return enc.pred.numpy(), enc.err_pred_onehot.numpy(), enc.err_true.numpy()


def fit_detectors(model, scores: list, x_val: torch.Tensor, fpr: float, batch_size: int = 500, autoencoder=None):
    """One detector per score fitted at ``fpr`` on clean validation data, plus the thresholds for
    every FPR in the report (1, 5, 10 % and ``fpr``) from the same validation scores. A score is a
    name (``autoencoder`` serves the magnet scores) or a Detector (``Detector.from_function``, any
    class), fitted here on ``x_val`` whatever it was fitted on before: the threshold is the run's."""
    detectors, thresholds = {}, {}
    for entry in scores:
        if isinstance(entry, str):
            ae = autoencoder if entry in AUTOENCODER_SCORES else None
            det = make_detector(model, entry, batch_size=batch_size, autoencoder=ae)
        elif isinstance(entry, Detector):
            if entry.model is not model:
                raise ValueError(f"detector {entry.score_name!r} guards another model than the one attacked")
            det = entry
        else:
            raise ValueError(f"a score is a name or a robustgen Detector, got {type(entry).__name__}")
        if det.score_name in detectors:
            raise ValueError(f"two scores are named {det.score_name!r}; give each its own name")
        det.fit(x_val, fpr=fpr)
        detectors[det.score_name] = det
        thresholds[det.score_name] = {f: threshold_at_fpr(det.clean_scores_, f) for f in sorted({*STANDARD_FPRS, fpr})}
    return detectors, thresholds


class Outcome(NamedTuple):
    """What a report needs of one attack's output (the images themselves are not kept)."""

    budget: str  # the attack's per-input budget in words
    pred: np.ndarray  # (N,) predictions on x_adv
    err_pred: np.ndarray  # (N,) L2 reconstruction error of x_adv under its predicted one-hot label
    err_true: np.ndarray  # (N,) ... under the true label
    scores: dict  # score name -> (N,) detector scores of x_adv
    seconds: float  # attack wall time
    adv: torch.Tensor | None = None  # x_adv itself, kept for oblivious attacks: the detector-aware ones start there


def attack_outcome(model, detectors: dict, method: str, eps: float, x: torch.Tensor, y: torch.Tensor, *,
                   target: str | None, batch_size: int, attack_kwargs: dict, on_batch=None,
                   seed: int | None = 0, start: torch.Tensor | None = None, keep_adv: bool = False) -> Outcome:
    """Run one attack (against ``detectors[target]`` when it is detector-aware; from ``start`` where
    it takes one), then one pass for its predictions and reconstruction errors, and score it with
    the detectors it is judged by. ``keep_adv`` keeps the examples in the outcome."""
    attack = make_attack(method, model, eps, detector=detectors.get(target), **attack_kwargs)
    judged = list(detectors) if target is None else [target]
    if not len(x):  # nothing left standing for it (a cascade)
        empty = np.zeros(0)
        return Outcome(attack.budget, np.zeros(0, dtype=np.int64), empty, empty, {s: empty for s in judged}, 0.0,
                       x.cpu() if keep_adv else None)
    began = time.perf_counter()
    x_adv = run_attack(attack, x, y, batch_size, on_batch=on_batch, seed=seed, start=start)
    seconds = time.perf_counter() - began
    pred, err_pred, err_true = predict_and_errors(model, x_adv, y, batch_size)
    return Outcome(attack.budget, pred, err_pred, err_true, {s: detectors[s].score(x_adv) for s in judged}, seconds,
                   x_adv.cpu() if keep_adv else None)


def spread(out: Outcome, idx: np.ndarray, clean: Outcome) -> Outcome:
    """An outcome on the inputs ``idx`` as one on all N: the others keep their ``clean`` outcome (the
    attack left them as they were). Scores the clean outcome lacks are NaN there."""
    n = len(clean.pred)
    if len(idx) == n:
        return out

    def fill(part, whole):
        full = np.array(whole, copy=True) if whole is not None else np.full(n, np.nan)
        full[idx] = part
        return full

    return Outcome(out.budget, fill(out.pred, clean.pred), fill(out.err_pred, clean.err_pred),
                   fill(out.err_true, clean.err_true), {s: fill(v, clean.scores.get(s)) for s, v in out.scores.items()},
                   out.seconds)
