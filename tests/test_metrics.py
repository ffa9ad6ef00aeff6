import numpy as np
import pytest

from robustgen.detectors.detector import threshold_at_fpr
from robustgen.evaluation.metrics import auroc, detection_row, flagged_rate, roc_points


@pytest.mark.parametrize("fpr", [0.01, 0.05, 0.1, 0.25])
def test_threshold_hits_requested_fpr(fpr):
    scores = np.random.RandomState(0).normal(size=10000)
    thr = threshold_at_fpr(scores, fpr)
    assert flagged_rate(scores, thr) == pytest.approx(fpr, abs=1e-4)
    # fresh draws from the same distribution are flagged at about the same rate
    fresh = np.random.RandomState(1).normal(size=100000)
    assert flagged_rate(fresh, thr) == pytest.approx(fpr, abs=0.01)


def test_threshold_with_ties_never_exceeds_fpr():
    scores = np.array([0.0] * 90 + [1.0] * 10)
    assert flagged_rate(scores, threshold_at_fpr(scores, 0.05)) <= 0.05
    assert flagged_rate(scores, threshold_at_fpr(scores, 0.10)) == pytest.approx(0.10)
    with pytest.raises(ValueError, match="fpr must be a number in"):
        threshold_at_fpr(scores, 1.5)


def test_auroc_separable_identical_and_empty():
    rng = np.random.RandomState(0)
    assert auroc(rng.uniform(0, 1, 500), rng.uniform(2, 3, 500)) == 1.0
    assert auroc(rng.uniform(2, 3, 500), rng.uniform(0, 1, 500)) == 0.0
    assert auroc(rng.normal(size=5000), rng.normal(size=5000)) == pytest.approx(0.5, abs=0.02)
    assert np.isnan(auroc([], [1.0]))
    fpr, tpr, _ = roc_points([0.0, 1.0, 2.0], [1.5, 3.0])
    assert fpr[-1] == 1.0 and tpr[-1] == 1.0 and np.all(np.diff(fpr) >= 0)


def test_detection_row_counts():
    y = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    pred_clean = np.array([0, 1, 2, 3, 4, 5, 6, 0])  # last input already misclassified
    pred_adv = np.array([9, 9, 9, 3, 4, 5, 6, 0])  # three successes
    s_clean = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    s_adv = np.array([5.0, 0.0, 5.0, 0.9, 0.1, 0.1, 0.1, 0.1])  # success #2 is not flagged
    row = detection_row(y=y, pred_clean=pred_clean, pred_adv=pred_adv, s_clean=s_clean, s_adv=s_adv,
                        thresholds={0.05: 0.75, 0.01: 0.85, 0.1: 0.65}, fpr=0.05)
    assert row["clean_acc"] == 7 / 8 and row["robust_acc"] == 4 / 8
    assert row["success_rate"] == pytest.approx(3 / 7)
    assert row["tpr_at_fpr_5"] == pytest.approx(2 / 3)
    assert row["fpr_test"] == 1 / 8
    assert row["undetected_success_rate"] == 1 / 8
    assert row["auroc_successful"] == pytest.approx(2 / 3)  # 5.0, 5.0 beat all 7; 0.0 beats none
