from pathlib import Path

import numpy as np
import pytest

from robustgen.evaluation.metrics import wilson_interval
from robustgen.evaluation.outcomes import BenchmarkResult
from robustgen.evaluation.sanity import _monotone, _square_vs_white_box, failed
from robustgen.evaluation.worst_case import per_input_rows, worst_case


def _result():
    r = BenchmarkResult(labels=np.array([3, 1, 4, 1, 5, 9, 2, 6]), correct=np.ones(8, dtype=bool))
    a = np.array([1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    b = np.array([0, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    r.broken = {("pgd", 0.3, "recon"): a, ("orthogonal-pgd", 0.3, "recon"): b,
                ("pgd", 0.1, "recon"): np.zeros(8, dtype=bool)}
    return r


def test_worst_case_is_the_union_over_attacks_per_input():
    rows = {(w["eps"], w["score"]): w for w in worst_case(_result())}
    w = rows[(0.3, "recon")]
    # pgd breaks inputs 0, 1; orthogonal-pgd 1, 2, 3: together 4 of 8, more than either (2 and 3)
    assert w["undetected_success_rate"] == 0.5 and w["n"] == 8
    assert w["attacks"] == "pgd+orthogonal-pgd"
    assert (w["ci_low"], w["ci_high"]) == pytest.approx(wilson_interval(4, 8))
    assert rows[(0.1, "recon")]["undetected_success_rate"] == 0.0
    assert w["oblivious_rate"] == 0.25 and w["adaptive_rate"] == 0.375  # pgd alone, orthogonal-pgd alone
    assert np.isnan(rows[(0.1, "recon")]["adaptive_rate"])  # no detector-aware attack at eps 0.1


def test_per_input_rows_make_the_union_checkable():
    rows = [r for r in per_input_rows(_result()) if r["eps"] == 0.3]
    assert [r["index"] for r in rows] == list(range(8)) and rows[2]["label"] == 4
    union = [max(r["pgd:recon"], r["orthogonal-pgd:recon"]) for r in rows]
    assert union == [1, 1, 1, 1, 0, 0, 0, 0]


def test_wilson_interval():
    assert wilson_interval(5, 100) == pytest.approx((0.02154, 0.11175), abs=1e-4)
    lo, hi = wilson_interval(0, 1000)
    assert lo == 0.0 and hi == pytest.approx(0.00383, abs=1e-4)
    assert wilson_interval(10, 10)[1] == 1.0


def _fooled(r, table):
    r.fooled = {k: np.array(v, dtype=bool) for k, v in table.items()}
    return r


def test_monotone_check_catches_robust_accuracy_rising_with_eps():
    r = _result()
    r.broken = {}
    _fooled(r, {("pgd", 0.1, None): [1, 1, 0, 0, 0, 0, 0, 0], ("pgd", 0.3, None): [1, 0, 0, 0, 0, 0, 0, 0]})
    rows = _monotone(r, ["pgd"], [0.1, 0.3])
    assert failed(rows) and "rises at 0.1->0.3" in failed(rows)[0]["detail"]
    _fooled(r, {("pgd", 0.1, None): [1, 0, 0, 0, 0, 0, 0, 0], ("pgd", 0.3, None): [1, 1, 0, 0, 0, 0, 0, 0]})
    assert not failed(_monotone(r, ["pgd"], [0.1, 0.3]))


def test_square_stronger_than_white_box_fails_the_check():
    r = _fooled(_result(), {("pgd", 0.3, None): [1, 0, 0, 0, 0, 0, 0, 0], ("square", 0.3, None): [1, 1, 1, 0, 0, 0, 0, 0]})
    rows = _square_vs_white_box(r, [0.3])
    assert rows[0]["passed"] is False and "2 inputs fooled only by square" in rows[0]["detail"]
    r = _fooled(_result(), {("pgd", 0.3, None): [1, 1, 0, 0, 0, 0, 0, 0], ("square", 0.3, None): [1, 0, 0, 0, 0, 0, 0, 0]})
    assert _square_vs_white_box(r, [0.3])[0]["passed"] is True
    assert _square_vs_white_box(_fooled(_result(), {("pgd", 0.3, None): [0] * 8}), [0.3])[0]["passed"] == "n/a"


def test_score_table_splits_the_worst_case_by_attack_kind():
    """On a committed report: the union over both kinds is worst_case.csv's figure, and each kind's
    union lies between the largest single attack of that kind and the total."""
    import pandas as pd

    from robustgen.evaluation.compare import score_table

    folder = Path(__file__).parent.parent / "reports" / "fast-mnist" / "attack-strong"
    rows = {(r["eps"], r["score"]): r for r in score_table([folder])}
    worst = pd.read_csv(folder / "worst_case.csv")
    detection = pd.read_csv(folder / "detection.csv")
    assert len(rows) == len(worst) == 9
    for w in worst.to_dict("records"):
        r = rows[(w["eps"], w["score"])]
        assert r["worst_case"] == pytest.approx(w["undetected_success_rate"])
        assert max(r["oblivious"], r["detector_aware"]) <= r["worst_case"] <= r["oblivious"] + r["detector_aware"]
        d = detection[(detection.eps == w["eps"]) & (detection.score == w["score"])]
        for kind, column in (("oblivious", "oblivious"), ("adaptive", "detector_aware")):
            assert d[d.attack_kind == kind]["undetected_success_rate"].max() <= r[column] + 1e-9


def test_ablation_view_puts_each_report_and_eps_on_one_row():
    from robustgen.evaluation.compare import ablation_view

    def row(report, eps, score, o, a, w, floor):
        return {"report": report, "eps": eps, "score": score, "n": 500, "oblivious": o, "detector_aware": a,
                "worst_case": w, "eps0_floor": floor}

    rows = ablation_view([row("m/a", 0.1, "recon", 0.01, 0.02, 0.024, 0.002), row("m/a", 0.1, "confidence", 0.0, 0.0, 0.0, 0.0),
                          row("m/a", 0.3, "recon", 0.5, 0.9, 0.95, 0.002), row("m/b", 0.1, "magnet", 0.1, 0.2, 0.25, float("nan")),
                          row("m/b", 0.1, "recon", 0.3, float("nan"), 0.3, float("nan"))])
    assert [(r["report"], r["eps"]) for r in rows] == [("m/a", 0.1), ("m/a", 0.3), ("m/b", 0.1)]
    assert rows[0] == {"report": "m/a", "eps": 0.1, "n": 500, "confidence": "0.0 / 0.0 → 0.0 %", "magnet": "-",
                       "recon": "1.0 / 2.0 → 2.4 %", "eps0_floor": "0.0-0.2 %"}
    assert rows[1]["confidence"] == "-" and rows[1]["eps0_floor"] == "0.2 %"
    assert rows[2]["magnet"] == "10.0 / 20.0 → 25.0 %" and rows[2]["eps0_floor"] == "-"
    assert rows[2]["recon"] == "30.0 / - → 30.0 %"  # a run with no detector-aware attack


def test_detector_checks_flag_black_box_only_breaks_and_aware_attacks_weaker_than_oblivious():
    from robustgen.evaluation.sanity import _detector_checks

    r = _result()
    bits = lambda v: np.array(v, dtype=bool)  # noqa: E731
    r.broken = {("pgd", 0.3, "confidence"): bits([1, 1, 0, 0, 0, 0, 0, 0]),
                ("square", 0.3, "confidence"): bits([1, 0, 1, 0, 0, 0, 0, 0]),  # input 2: only the black box
                ("guarded-apgd", 0.3, "confidence"): bits([1, 0, 0, 0, 0, 0, 0, 0])}  # weaker than pgd + square
    rows = {(row["check"]): row for row in _detector_checks(r)}
    assert rows["black-box-only"]["passed"] is False and "1 inputs broken by a gradient-free" in rows["black-box-only"]["detail"]
    assert rows["aware-not-weaker"]["passed"] is False
    r.broken[("guarded-apgd", 0.3, "confidence")] = bits([1, 1, 1, 1, 0, 0, 0, 0])  # now it breaks input 2 too
    rows = {(row["check"]): row for row in _detector_checks(r)}
    assert rows["black-box-only"]["passed"] is True and rows["aware-not-weaker"]["passed"] is True
