"""The detection benchmark behind ``robustgen attack``: fit detectors on clean validation data,
attack the first N test images, and compute every number of the report.

Returns data (rows, ROC curves, per-input outcomes, misclassification AUROCs, sanity checks);
files are written by ``reports``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np
import torch

from .attacks import is_adaptive, make_attack, run_attack
from .detect import ReconstructionDetector, threshold_at_fpr
from .inference import encode_dataset
from .metrics import auroc, detection_row, roc_points, wilson_interval
from .model import StyleMemoryNet, check_class_count

TARGET_FPRS = (0.01, 0.05, 0.10)


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
    sanity: list[dict] = field(default_factory=list)  # check, passed, detail (see robustgen.sanity)
    budgets: dict = field(default_factory=dict)  # method -> its per-input budget in words


def _predict_and_errors(model: StyleMemoryNet, x: torch.Tensor, y: torch.Tensor, batch_size: int):
    """Predictions and per-image L2 reconstruction errors under the predicted and the true one-hot label."""
    enc = encode_dataset(model, x, y, batch_size)
    return enc.pred.numpy(), enc.err_pred_onehot.numpy(), enc.err_true.numpy()


def fit_detectors(model, scores: list[str], x_val: torch.Tensor, fpr: float, batch_size: int = 500):
    """One detector per score fitted at ``fpr`` on clean validation data, plus the thresholds for
    every FPR in the report (1, 5, 10 % and ``fpr``) from the same validation scores."""
    detectors, thresholds = {}, {}
    for name in scores:
        det = ReconstructionDetector(model, name, batch_size=batch_size).fit(x_val, fpr=fpr)
        detectors[name] = det
        thresholds[name] = {f: threshold_at_fpr(det.clean_scores_, f) for f in sorted({*TARGET_FPRS, fpr})}
    return detectors, thresholds


class Outcome(NamedTuple):
    """One attack's output and what it is judged by."""

    attack: object  # the configured attacks.Attack
    x_adv: torch.Tensor
    pred: np.ndarray  # (N,) predictions on x_adv
    err_pred: np.ndarray  # (N,) L2 reconstruction error of x_adv under its predicted one-hot label
    err_true: np.ndarray  # (N,) ... under the true label
    scores: dict  # score name -> (N,) detector scores of x_adv
    seconds: float  # attack wall time


def attack_outcome(model, detectors: dict, method: str, eps: float, x: torch.Tensor, y: torch.Tensor, *,
                   target: str | None, batch_size: int, attack_kwargs: dict, on_batch=None,
                   seed: int | None = 0) -> Outcome:
    """Run one attack (against ``detectors[target]`` when it is detector-aware), then one pass for
    its predictions and reconstruction errors, and score it with the detectors it is judged by."""
    attack = make_attack(method, model, eps, detector=detectors.get(target), **attack_kwargs)
    start = time.perf_counter()
    x_adv = run_attack(attack, x, y, batch_size, on_batch=on_batch, seed=seed)
    seconds = time.perf_counter() - start
    pred, err_pred, err_true = _predict_and_errors(model, x_adv, y, batch_size)
    judged = list(detectors) if target is None else [target]
    return Outcome(attack, x_adv, pred, err_pred, err_true, {s: detectors[s].score(x_adv) for s in judged}, seconds)


def run_benchmark(model: StyleMemoryNet, x_val: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor, *,
                  methods: list[str], eps_list: list[float], scores: list[str], fpr: float = 0.05,
                  batch_size: int = 500, attack_kwargs: dict | None = None, sanity_n: int = 200,
                  on_attack: Callable[[str, int], None] | None = None,
                  on_stage: Callable[[str], None] | None = None, seed: int | None = 0) -> BenchmarkResult:
    """Attack ``x_test`` with every (method, eps) and score it with every detector.

    Oblivious attacks are run once per (method, eps) and shared by all scores; detector-aware
    attacks are run once per score, against that score's detector. Then the sanity checks of
    ``robustgen.sanity`` run on the first ``sanity_n`` inputs (0 skips the ones that attack again).
    ``on_attack(label, n_done)`` reports progress in images, ``on_stage(text)`` the stage.
    Each attack batch's randomness is seeded by (``seed``, its first input's index): see ``run_attack``.
    """
    from .sanity import run_sanity_checks

    check_class_count(model, y_test, "the test data")
    attack_kwargs = attack_kwargs or {}
    result = BenchmarkResult()
    if on_stage:
        on_stage("fitting detectors on clean validation data")
    detectors, thresholds = fit_detectors(model, scores, x_val, fpr, batch_size)
    y = y_test.cpu().numpy()
    result.labels = y
    pred_clean, err_clean_pred, _ = _predict_and_errors(model, x_test, y_test, batch_size)
    clean_scores = {s: detectors[s].score(x_test) for s in scores}
    correct = pred_clean == y
    result.correct = correct
    for s in scores:
        result.misclassification.append({"score": s, "n": int(len(y)), "n_misclassified": int((~correct).sum()),
                                         "auroc_misclassified": auroc(clean_scores[s][correct], clean_scores[s][~correct])})

    for method in methods:
        for eps in eps_list:
            targets = scores if is_adaptive(method) else [None]
            for target in targets:
                label = f"{method} eps={eps:g}" + (f" vs {target}" if target else "")
                if on_stage:
                    on_stage(label)
                out = attack_outcome(
                    model, detectors, method, eps, x_test, y_test, target=target, batch_size=batch_size,
                    attack_kwargs=attack_kwargs, on_batch=(lambda k, lab=label: on_attack(lab, k)) if on_attack else None,
                    seed=seed)
                pred_adv, seconds = out.pred, out.seconds
                result.seconds[label] = seconds
                result.budgets[method] = out.attack.budget
                result.fooled[(method, eps, target)] = correct & (pred_adv != y)
                for s, s_adv in out.scores.items():
                    op = thresholds[s][fpr]
                    result.broken[(method, eps, s)] = correct & (pred_adv != y) & ~(s_adv > op)
                    row = {"method": method, "attack_kind": "adaptive" if target else "oblivious", "eps": eps, "score": s}
                    row.update(detection_row(y=y, pred_clean=pred_clean, pred_adv=pred_adv, s_clean=clean_scores[s],
                                             s_adv=s_adv, thresholds=thresholds[s], fpr=fpr))
                    row.update(err_clean_pred=float(err_clean_pred.mean()), err_adv_pred=float(out.err_pred.mean()),
                               err_adv_true=float(out.err_true.mean()), threshold=op, attack_seconds=seconds)
                    result.rows.append(row)
                    f, t, th = roc_points(clean_scores[s], s_adv)
                    result.roc += [{"method": method, "eps": eps, "score": s, "fpr": a, "tpr": b, "threshold": c}
                                   for a, b, c in zip(f, t, th)]
    if on_stage:
        on_stage("sanity checks")
    result.sanity = run_sanity_checks(result, model, detectors, x_test, y_test, methods=methods, eps_list=eps_list,
                                      batch_size=batch_size, attack_kwargs=attack_kwargs, sanity_n=sanity_n,
                                      fpr=fpr, thresholds=thresholds, seed=seed)
    return result


def worst_case(result: BenchmarkResult) -> list[dict]:
    """Per (eps, score): the share of all N inputs that *any* attack of the run broke (made
    misclassified and unflagged): the union over attacks, per input, with a 95 % Wilson interval."""
    groups: dict[tuple, list] = {}
    for (method, eps, score), broken in result.broken.items():
        groups.setdefault((eps, score), []).append((method, broken))
    out = []
    for (eps, score), items in sorted(groups.items()):
        union = np.logical_or.reduce([b for _, b in items])
        n, k = len(union), int(union.sum())
        lo, hi = wilson_interval(k, n)
        out.append({"eps": eps, "score": score, "n": n, "undetected_success_rate": k / n, "ci_low": lo, "ci_high": hi,
                    "attacks": "+".join(m for m, _ in items)})
    return out


def security_curve(rows: list[dict], worst: list[dict]) -> list[dict]:
    """Per score and eps (eps 0 = clean): the classifier's robust accuracy under the strongest
    attack judged by that score (from ``rows``, detection.csv's rows) and the per-input worst-case
    undetected-success (from ``worst``, worst_case.csv's rows)."""
    lowest: dict[tuple, float] = {}
    for r in rows:
        key = (float(r["eps"]), r["score"])
        lowest[key] = min(lowest.get(key, 1.0), float(r["robust_acc"]))
    clean = float(rows[0]["clean_acc"]) if rows else float("nan")
    out = [{"score": s, "eps": 0.0, "robust_acc": clean, "undetected_success_rate": 0.0}
           for s in sorted({w["score"] for w in worst})]
    out += [{"score": w["score"], "eps": float(w["eps"]), "robust_acc": lowest.get((float(w["eps"]), w["score"]), float("nan")),
             "undetected_success_rate": float(w["undetected_success_rate"])} for w in worst]
    return sorted(out, key=lambda r: (r["score"], r["eps"]))


def per_input_rows(result: BenchmarkResult) -> list[dict]:
    """One row per (input, eps): index, label, eps, and per ``method:score`` whether it broke the input."""
    by_eps: dict[float, dict] = {}
    for (method, eps, score), broken in result.broken.items():
        by_eps.setdefault(eps, {})[f"{method}:{score}"] = broken
    rows = []
    for eps, columns in sorted(by_eps.items()):
        for i, label in enumerate(result.labels):
            rows.append({"index": i, "label": int(label), "eps": eps, **{k: int(v[i]) for k, v in columns.items()}})
    return rows
