"""The detection benchmark behind ``robustgen attack``: fit detectors on clean validation data,
attack the first N test images, and compute every number of the report.

Returns data (rows, ROC curves, per-input outcomes, misclassification AUROCs, sanity checks);
files are written by ``reports``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..attacks import is_adaptive
from ..model import StyleMemoryNet, check_class_count
from .cascade import Starts, cascade_order, full_order, standing
from .gradients import check_gradients, with_estimates
from .metrics import auroc, detection_row, roc_points
from .outcomes import BenchmarkResult, Outcome, attack_outcome, fit_detectors, predict_and_errors, spread
from .sanity import run_sanity_checks
from .store import OutcomeStore, fetch


def run_benchmark(model, x_val: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor, *,
                  methods: list[str], eps_list: list[float], scores: list, fpr: float = 0.05,
                  batch_size: int = 500, attack_kwargs: dict | None = None, sanity_n: int = 200,
                  on_attack: Callable[[str, int], None] | None = None,
                  on_stage: Callable[[str], None] | None = None, seed: int | None = 0,
                  autoencoder: StyleMemoryNet | None = None, store: OutcomeStore | None = None,
                  full: bool = False) -> BenchmarkResult:
    """Attack ``x_test`` with every (method, eps) and score it with every detector.

    Oblivious attacks are run once per (method, eps) and shared by all scores; detector-aware
    attacks are run once per score, against that score's detector, beginning (where they take a
    start) at the best oblivious example so far. By default each attack runs only on the inputs
    still standing for its score(s) (a cascade, :mod:`.cascade`; attacks not given an input keep its
    clean outcome in the per-attack rows); ``full`` runs every attack on every input. Then the sanity checks of
    ``robustgen.sanity`` run on the first ``sanity_n`` inputs (0 skips the ones that attack again).
    ``on_attack(label, n_done)`` reports progress in images, ``on_stage(text)`` the stage.
    Each attack batch's randomness is seeded by (``seed``, its first input's index): see ``run_attack``.
    ``autoencoder`` (label-free) serves the magnet scores. ``store`` keeps each finished attack's
    outcome (and gives back those an interrupted run finished): see :mod:`.store`.
    """
    check_class_count(model, y_test, "the test data")
    attack_kwargs = attack_kwargs or {}
    result = BenchmarkResult()
    if on_stage:
        on_stage("fitting detectors on clean validation data")
    detectors, thresholds = fit_detectors(model, scores, x_val, fpr, batch_size, autoencoder)
    scores = list(detectors)  # names, whatever was given (a name or a Detector)
    if on_stage:
        on_stage("checking each score's input gradient")
    result.gradients = check_gradients(detectors, x_val)
    # a blocked score: attacked through a fitted surrogate, else a finite-difference estimate
    detectors = with_estimates(detectors, result.gradients, x_val, eps_list, seed=seed or 0)
    y = y_test.cpu().numpy()
    result.labels = y
    pred_clean, err_clean_pred, err_clean_true = predict_and_errors(model, x_test, y_test, batch_size)
    clean_scores = {s: detectors[s].score(x_test) for s in scores}
    correct = pred_clean == y
    result.correct = correct
    result.clean_flagged = {s: clean_scores[s] > thresholds[s][fpr] for s in scores}
    for s in scores:
        result.misclassification.append({"score": s, "n": int(len(y)), "n_misclassified": int((~correct).sum()),
                                         "auroc_misclassified": auroc(clean_scores[s][correct], clean_scores[s][~correct])})

    result.cascade = not full
    # never the order given: the detector-aware attacks must have the oblivious ones' examples to begin at
    # (given `--method selective-pgd,pgd --full`, they had none)
    result.order = full_order(methods) if full else cascade_order(methods)
    starts = Starts(tuple(x_test.shape))
    clean = Outcome("", pred_clean, err_clean_pred, err_clean_true, clean_scores, 0.0)
    for method in result.order:
        for eps in eps_list:
            targets = scores if is_adaptive(method) else [None]
            for target in targets:
                label = f"{method} eps={eps:g}" + (f" vs {target}" if target else "")
                if on_stage:
                    on_stage(label)
                progress = (lambda k, lab=label: on_attack(lab, k)) if on_attack else None
                attacked = np.ones(len(y), dtype=bool) if full else standing(
                    result.broken, correct, eps, [target] if target else scores)
                idx = np.nonzero(attacked)[0]
                key = ("attack" if full else "cascade", method, eps, target)
                if progress:  # the bar moves on by the inputs already broken (all: done by an interrupted run)
                    skipped = len(y) if store is not None and store.has(key) else len(y) - len(idx)
                    if skipped:
                        progress(skipped)
                sel = torch.from_numpy(idx)
                start = starts.get(eps, target, idx) if target else None
                out = fetch(store, key, lambda: attack_outcome(
                    model, detectors, method, eps, x_test[sel], y_test[sel], target=target, batch_size=batch_size,
                    attack_kwargs=attack_kwargs, on_batch=progress, seed=seed, start=start, keep_adv=target is None))
                if target is None and out.adv is not None:
                    starts.update(eps, idx, out.adv, out.pred != y[idx], out.scores)
                out = spread(out, idx, clean)
                pred_adv, seconds = out.pred, out.seconds
                result.seconds[label] = seconds
                result.budgets[method] = out.budget
                result.attacked[(method, eps, target)] = attacked
                result.fooled[(method, eps, target)] = correct & (pred_adv != y)
                for s, s_adv in out.scores.items():
                    op = thresholds[s][fpr]
                    result.broken[(method, eps, s)] = correct & (pred_adv != y) & ~(s_adv > op)
                    row = {"method": method, "attack_kind": "adaptive" if target else "oblivious", "eps": eps, "score": s}
                    row.update(detection_row(y=y, pred_clean=pred_clean, pred_adv=pred_adv, s_clean=clean_scores[s],
                                             s_adv=s_adv, thresholds=thresholds[s], fpr=fpr))
                    row.update(err_clean_pred=float(err_clean_pred.mean()), err_adv_pred=float(out.err_pred.mean()),
                               err_adv_true=float(out.err_true.mean()), threshold=op, attack_seconds=seconds,
                               inputs_attacked=len(idx))
                    result.rows.append(row)
                    f, t, th = roc_points(clean_scores[s], s_adv)
                    result.roc += [{"method": method, "eps": eps, "score": s, "fpr": a, "tpr": b, "threshold": c}
                                   for a, b, c in zip(f, t, th)]
    if on_stage:
        on_stage("sanity checks")
    result.sanity = run_sanity_checks(result, model, detectors, x_test, y_test, methods=methods, eps_list=eps_list,
                                      batch_size=batch_size, attack_kwargs=attack_kwargs, sanity_n=sanity_n,
                                      fpr=fpr, thresholds=thresholds, seed=seed, store=store,
                                      starts=starts)
    return result
