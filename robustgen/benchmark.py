"""The detection benchmark behind ``robustgen attack``: fit detectors on clean validation data,
attack the first N test images, and compute every number of the report.

Returns data (rows, ROC curves, misclassification AUROCs); files are written by ``reports``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from .attacks import is_adaptive, make_attack, run_attack
from .detect import ReconstructionDetector, threshold_at_fpr
from .inference import encode_dataset
from .metrics import auroc, detection_row, roc_points
from .model import StyleMemoryNet, check_class_count

TARGET_FPRS = (0.01, 0.05, 0.10)


@dataclass
class BenchmarkResult:
    rows: list[dict] = field(default_factory=list)  # one per (method, eps, score)
    roc: list[dict] = field(default_factory=list)  # long format: method, eps, score, fpr, tpr, threshold
    misclassification: list[dict] = field(default_factory=list)  # one per score, on clean test data
    seconds: dict = field(default_factory=dict)  # attack wall time per (method, eps[, score])


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


def run_benchmark(model: StyleMemoryNet, x_val: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor, *,
                  methods: list[str], eps_list: list[float], scores: list[str], fpr: float = 0.05,
                  batch_size: int = 500, attack_kwargs: dict | None = None,
                  on_attack: Callable[[str, int], None] | None = None) -> BenchmarkResult:
    """Attack ``x_test`` with every (method, eps) and score it with every detector.

    Oblivious attacks are run once per (method, eps) and shared by all scores; adaptive attacks
    are run once per score, against that score's detector. ``on_attack(label, n_done)`` reports
    progress in images.
    """
    check_class_count(model, y_test, "the test data")
    attack_kwargs = attack_kwargs or {}
    result = BenchmarkResult()
    detectors, thresholds = fit_detectors(model, scores, x_val, fpr, batch_size)
    y = y_test.cpu().numpy()
    pred_clean, err_clean_pred, _ = _predict_and_errors(model, x_test, y_test, batch_size)
    clean_scores = {s: detectors[s].score(x_test) for s in scores}
    correct = pred_clean == y
    for s in scores:
        result.misclassification.append({"score": s, "n": int(len(y)), "n_misclassified": int((~correct).sum()),
                                         "auroc_misclassified": auroc(clean_scores[s][correct], clean_scores[s][~correct])})

    for method in methods:
        for eps in eps_list:
            targets = [(s, [s]) for s in scores] if is_adaptive(method) else [(None, scores)]
            for target, scored in targets:
                label = f"{method} eps={eps:g}" + (f" vs {target}" if target else "")
                attack = make_attack(method, model, eps, detector=detectors.get(target), **attack_kwargs)
                start = time.perf_counter()
                x_adv = run_attack(attack, x_test, y_test, batch_size,
                                   on_batch=(lambda k, lab=label: on_attack(lab, k)) if on_attack else None)
                result.seconds[label] = time.perf_counter() - start
                pred_adv, err_adv_pred, err_adv_true = _predict_and_errors(model, x_adv, y_test, batch_size)
                for s in scores if target is None else scored:
                    s_adv = detectors[s].score(x_adv)
                    row = {"method": method, "attack_kind": "adaptive" if target else "oblivious",
                           "eps": eps, "score": s}
                    row.update(detection_row(y=y, pred_clean=pred_clean, pred_adv=pred_adv, s_clean=clean_scores[s],
                                             s_adv=s_adv, thresholds=thresholds[s], fpr=fpr))
                    row.update(err_clean_pred=float(err_clean_pred.mean()), err_adv_pred=float(err_adv_pred.mean()),
                               err_adv_true=float(err_adv_true.mean()), threshold=thresholds[s][fpr],
                               attack_seconds=result.seconds[label])
                    result.rows.append(row)
                    f, t, th = roc_points(clean_scores[s], s_adv)
                    result.roc += [{"method": method, "eps": eps, "score": s, "fpr": a, "tpr": b, "threshold": c}
                                   for a, b, c in zip(f, t, th)]
    return result


def worst_case(rows: list[dict]) -> list[dict]:
    """Per (eps, score): the attack that leaves the most undetected successes (what a detector
    result should be judged against)."""
    best: dict[tuple, dict] = {}
    for r in rows:
        key = (r["eps"], r["score"])
        if key not in best or r["undetected_success_rate"] > best[key]["undetected_success_rate"]:
            best[key] = r
    return [{"eps": k[0], "score": k[1], "strongest_attack": v["method"],
             "undetected_success_rate": v["undetected_success_rate"], "auroc_successful": v["auroc_successful"],
             "robust_acc": v["robust_acc"]} for k, v in sorted(best.items())]

