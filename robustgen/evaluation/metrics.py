"""Detection metrics on top of scikit-learn (conventions in DESIGN.md).

Negatives are clean inputs, positives attacked ones; a higher score means "more suspicious" and an
input is flagged when its score is strictly above the threshold.
"""

from __future__ import annotations

import numpy as np

# scikit-learn is imported where it is used: it costs 1.7 s of every `robustgen` start-up (a third of it)
# and most commands (detect, train, models, --help) never compute a ROC curve.

STANDARD_FPRS = (0.01, 0.05, 0.10)  # every report has a TPR column at each of these: tpr_at_fpr_1, _5, _10


def _labelled(neg: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    neg, pos = np.asarray(neg, dtype=np.float64), np.asarray(pos, dtype=np.float64)
    return np.r_[np.zeros(len(neg)), np.ones(len(pos))], np.r_[neg, pos]


def auroc(neg, pos) -> float:
    """Area under the ROC curve separating ``pos`` from ``neg``; NaN when either side is empty."""
    if len(neg) == 0 or len(pos) == 0:
        return float("nan")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(*_labelled(neg, pos)))


def roc_points(neg, pos) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) with every point kept (``drop_intermediate=False``)."""
    if len(neg) == 0 or len(pos) == 0:
        return np.array([]), np.array([]), np.array([])
    from sklearn.metrics import roc_curve

    return roc_curve(*_labelled(neg, pos), drop_intermediate=False)


def flagged_rate(scores, threshold: float) -> float:
    """Share of ``scores`` strictly above ``threshold`` (TPR on attacked inputs, FPR on clean ones)."""
    scores = np.asarray(scores)
    return float(np.mean(scores > threshold)) if len(scores) else float("nan")


def detection_row(*, y: np.ndarray, pred_clean: np.ndarray, pred_adv: np.ndarray, s_clean: np.ndarray,
                  s_adv: np.ndarray, thresholds: dict[float, float], fpr: float) -> dict:
    """Every per-(attack, score) number of the detection report.

    ``thresholds`` maps target FPR -> threshold fitted on clean *validation* scores; ``fpr`` picks
    the operating point for ``fpr_test`` and ``undetected_success_rate``.
    - robust_acc: share of all N inputs classified correctly both clean and attacked (RobustBench).
    - success_rate: share of correctly classified clean inputs that the attack misclassifies.
    - auroc: all attacked inputs vs all clean inputs.
    - auroc_successful: successful adversarials vs correctly classified clean inputs.
    - tpr_at_fpr_K: share of successful adversarials flagged at the K % threshold (K = 1, 5, 10).
    - tpr_at_fpr: the same at the run's own operating point ``fpr`` (whatever its value).
    - undetected_success_rate: share of all N inputs that were correct, became misclassified and
      were not flagged: what the attacker gets.
    """
    correct = pred_clean == y
    success = correct & (pred_adv != y)
    n = len(y)
    row = {
        "n": int(n),
        "clean_acc": float(correct.mean()),
        "robust_acc": float((correct & (pred_adv == y)).mean()),
        "success_rate": float(success.sum() / max(1, correct.sum())),
        "auroc": auroc(s_clean, s_adv),
        "auroc_successful": auroc(s_clean[correct], s_adv[success]),
    }
    for target in STANDARD_FPRS:
        if target in thresholds:
            row[f"tpr_at_fpr_{target * 100:g}"] = flagged_rate(s_adv[success], thresholds[target])
    op = thresholds[fpr]
    row["tpr_at_fpr"] = flagged_rate(s_adv[success], op)
    row["fpr_test"] = flagged_rate(s_clean, op)
    row["undetected_success_rate"] = float((success & ~(s_adv > op)).sum() / max(1, n))
    return row


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval for a share k / n (stays inside [0, 1], sensible at k = 0)."""
    if n <= 0:
        return float("nan"), float("nan")
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k == 0 else max(0.0, centre - half)  # exact ends: rounding must not move them
    hi = 1.0 if k == n else min(1.0, centre + half)
    return float(lo), float(hi)
