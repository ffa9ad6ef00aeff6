"""Only attack what still stands (a cascade, the default) and begin the detector-aware attacks at the
oblivious attacks' examples; ``--full`` runs every attack on every input."""

import numpy as np
import pytest
import torch

import robustgen
from robustgen.attacks import make_attack, run_attack
from robustgen.cli import main
from robustgen.detectors.detector import make_detector
from robustgen.evaluation.benchmark import run_benchmark
from robustgen.evaluation.cascade import cascade_order, full_order, standing
from robustgen.evaluation.compare import score_table
from robustgen.evaluation.worst_case import worst_case


def test_gradient_attacks_run_before_gradient_free_ones_and_oblivious_before_aware():
    order = cascade_order(["square", "guarded-square", "adaptive-pgd", "selective-pgd", "autoattack", "pgd",
                           "guarded-apgd", "apgd"])
    assert order == ["pgd", "apgd", "autoattack", "selective-pgd", "guarded-apgd", "adaptive-pgd", "square",
                     "guarded-square"]  # cheaper first within each kind
    assert full_order(["guarded-square", "adaptive-pgd", "square", "selective-pgd", "pgd"]) == [
        "pgd", "square", "selective-pgd", "adaptive-pgd", "guarded-square"]  # every oblivious one first


def test_an_input_stands_for_a_score_until_some_attack_breaks_it_there():
    correct = np.array([1, 1, 1, 0], dtype=bool)
    broken = {("pgd", 0.1, "a"): np.array([1, 0, 0, 0], dtype=bool),
              ("pgd", 0.1, "b"): np.array([1, 1, 0, 0], dtype=bool),
              ("pgd", 0.3, "a"): np.array([1, 1, 1, 0], dtype=bool)}
    assert standing(broken, correct, 0.1, ["a"]).tolist() == [False, True, True, False]
    assert standing(broken, correct, 0.1, ["b"]).tolist() == [False, False, True, False]
    assert standing(broken, correct, 0.1, ["a", "b"]).tolist() == [False, True, True, False]  # for some score
    assert not standing(broken, correct, 0.3, ["a"]).any()


@pytest.fixture(scope="module")
def both(trained_model, mnist_small):
    """The same run as a cascade and in full: PGD, a detector-aware attack and Square, two scores."""
    xv, x, y = mnist_small[1][0][:300], mnist_small[1][0][300:360], mnist_small[1][1][300:360]
    kw = dict(methods=["square", "selective-pgd", "pgd"], eps_list=[0.1, 0.2], scores=["confidence", "recon"],
              sanity_n=10, attack_kwargs={"steps": 10, "queries": 100, "targets": "untargeted"})
    return (run_benchmark(trained_model, xv, x, y, **kw), run_benchmark(trained_model, xv, x, y, full=True, **kw))


def test_each_attack_of_a_cascade_runs_only_on_what_still_stands(both):
    cascade, full = both
    assert cascade.cascade and not full.cascade
    # given square, selective-pgd, pgd: the full run runs both oblivious attacks before the detector-aware
    # one, which begins at their examples (it ran second, before PGD, and had no PGD examples)
    assert cascade.order == ["pgd", "selective-pgd", "square"] and full.order == ["pgd", "square", "selective-pgd"]
    for (method, eps, score), broken in cascade.broken.items():
        earlier = [b for (m, e, s), b in cascade.broken.items() if e == eps and s == score
                   and cascade.order.index(m) < cascade.order.index(method)]
        if earlier:  # never attacked again once broken, and never counted twice
            assert not (broken & np.logical_or.reduce(earlier)).any(), (method, eps, score)
        target = score if method == "selective-pgd" else None
        assert not (broken & ~cascade.attacked[(method, eps, target)]).any()
    pgd_rows = [r for r in cascade.rows if r["method"] == "pgd"]
    later = [r for r in cascade.rows if r["method"] != "pgd"]
    assert all(r["inputs_attacked"] == int(cascade.correct.sum()) for r in pgd_rows)
    assert all(r["inputs_attacked"] < r["n"] for r in later)  # PGD broke some: less left for the others
    assert all(r["inputs_attacked"] == r["n"] for r in full.rows)


def test_the_cascade_finds_the_worst_case_the_full_run_finds(both):
    cascade, full = both
    a = {(w["eps"], w["score"]): w for w in worst_case(cascade)}
    b = {(w["eps"], w["score"]): w for w in worst_case(full)}
    assert a.keys() == b.keys()
    for key in a:  # random starts differ with the inputs each attack sees: within 2 of the 60
        assert abs(a[key]["undetected_success_rate"] - b[key]["undetected_success_rate"]) <= 2 / 60, key
        assert np.isnan(a[key]["adaptive_rate"]) and not np.isnan(b[key]["adaptive_rate"])
    assert max(w["undetected_success_rate"] for w in a.values()) > 0.2  # the attacks broke inputs
    checks = {(r["check"], r["passed"]) for r in cascade.sanity}
    assert ("aware-not-weaker", "n/a") in checks and ("black-box-weaker", "n/a") in checks


def test_the_doubled_steps_check_of_a_cascade_reruns_each_aware_attack_once(both):
    """Against the score it ran on the most of the first sanity_n inputs; --full against each score.
    A change is counted over those inputs, not over the few re-run."""
    cascade, full = both

    def rows(r, method):
        return [x["detail"] for x in r.sanity if x["check"] == "double-steps" and x["detail"].startswith(method)]

    assert len(rows(full, "selective-pgd")) == 2 and len(rows(cascade, "selective-pgd")) == 1
    counts = {s: int(cascade.attacked[("selective-pgd", 0.2, s)][:10].sum()) for s in ("confidence", "recon")}
    best = max(counts, key=counts.get)
    assert f"undetected-success vs {best}" in rows(cascade, "selective-pgd")[0]
    partial = [r for r in cascade.sanity if r["check"] == "double-steps" and "of the first 10" in r["detail"]]
    assert partial  # the cascade re-ran some attack on fewer than the 10
    for row in partial:
        points = float(row["detail"].split("a change of ")[1].split(" points")[0])
        assert row["passed"] == (points < 1.0)


def test_detector_aware_attacks_break_everything_the_oblivious_ones_broke(both):
    """They begin at the oblivious example (misclassified, lowest score): an attacker who knows the
    detector does at least what one who ignores it does, input by input."""
    _, full = both
    for eps in (0.1, 0.2):
        for score in ("confidence", "recon"):
            oblivious = full.broken[("pgd", eps, score)] | full.broken[("square", eps, score)]
            aware = full.broken[("selective-pgd", eps, score)]
            assert not (oblivious & ~aware).any(), (eps, score)
    assert all(r["passed"] is not False for r in full.sanity if r["check"] == "aware-not-weaker")


@pytest.mark.parametrize("name", ["adaptive-pgd", "selective-pgd", "guarded-apgd", "guarded-square"])
def test_an_attack_given_a_start_that_breaks_the_input_keeps_it(trained_model, mnist_small, name):
    xv, x, y = mnist_small[1][0][:300], mnist_small[1][0][400:430], mnist_small[1][1][400:430]
    det = make_detector(trained_model, "confidence").fit(xv, fpr=0.05)
    pgd = run_attack(make_attack("pgd", trained_model, 0.2, steps=20), x, y, seed=0)

    def broken(adv):
        with torch.no_grad():
            return (trained_model(adv).argmax(1) != y) & torch.from_numpy(det.score(adv) <= det.threshold)

    start = torch.where(broken(pgd)[:, None, None, None], pgd, torch.full_like(pgd, float("nan")))
    assert broken(pgd).sum() >= 3
    # a crippled budget (1 step of 1e-4, 1 query): alone it breaks almost nothing; from the starts, all they broke
    atk = make_attack(name, trained_model, 0.2, detector=det, steps=1, step_size=1e-4, search_steps=1,
                      targets="untargeted", queries=1)
    assert atk.starts
    alone, started = run_attack(atk, x, y, seed=0), run_attack(atk, x, y, seed=0, start=start)
    assert (broken(started) | ~broken(pgd)).all()
    assert broken(alone).sum() < broken(pgd).sum()


def test_the_report_says_how_the_attacks_were_run(tmp_path):
    args = ["attack", "--checkpoint", "fast-mnist", "--n-val", "300", "--method", "pgd,selective-pgd", "--eps", "0.2",
            "-n", "30", "--steps", "5", "--step-size", "0.05", "--targets", "untargeted", "--score", "confidence",
            "--sanity-n", "0", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "cascade")]) == 0
    assert main([*args, "--full", "--out", str(tmp_path / "full")]) == 0
    cascade, full = robustgen.read_report(tmp_path / "cascade"), robustgen.read_report(tmp_path / "full")
    assert cascade["meta"]["cascade"] is True and full["meta"]["cascade"] is False
    assert "Run as a cascade" in (tmp_path / "cascade" / "detection.md").read_text()
    assert "Every attack ran on every input (`--full`)" in (tmp_path / "full" / "detection.md").read_text()
    rows = cascade["detection"].set_index("method")["inputs_attacked"]
    assert rows["selective-pgd"] < rows["pgd"] <= 30
    split = {r["report"].split("/")[-1]: r for r in score_table([tmp_path / "cascade", tmp_path / "full"])}
    assert np.isnan(split["cascade"]["detector_aware"]) and not np.isnan(split["full"]["detector_aware"])
