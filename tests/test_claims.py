"""The claims the README and the design make, each with a test that fails when the claim breaks:
thresholds never see test data; guarded-apgd is at least APGD on the guarded model; the
detector-aware attacks work through the recommended score and the baselines; each sanity check fails
on an attack crippled to fail it; the README's headline figures are the CSVs' they cite."""

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import torchattacks

from robustgen import GuardedClassifier, ReconstructionDetector, load_model, make_detector
from robustgen.attacks import REGISTRY, make_attack, run_attack, unbounded_step_size
from robustgen.attacks.base import Attack
from robustgen.detectors.detector import Detector
from robustgen.evaluation.benchmark import run_benchmark
from robustgen.evaluation.sanity import failed

ROOT = Path(__file__).resolve().parents[1]


def test_thresholds_are_fitted_on_validation_data_and_never_see_test_data(trained_model, mnist_small, monkeypatch):
    x_val = mnist_small[1][0][:300]
    seen, fit = [], Detector.fit

    def spy(self, x_clean, *a, **k):
        seen.append(torch.as_tensor(x_clean).clone())
        return fit(self, x_clean, *a, **k)

    monkeypatch.setattr(Detector, "fit", spy)
    thresholds = []
    for part in (slice(300, 340), slice(600, 640)):  # two different test sets
        x, y = mnist_small[1][0][part], mnist_small[1][1][part]
        result = run_benchmark(trained_model, x_val, x, y, methods=["fgsm"], eps_list=[0.1], scores=["confidence", "recon"],
                               sanity_n=0)
        thresholds.append({r["score"]: r["threshold"] for r in result.rows})
    assert thresholds[0] == thresholds[1]  # the test data moved; no threshold did
    assert seen and all(torch.equal(s, x_val) for s in seen)  # every fit was given the validation images, only them


def _broken(model, det, x, y, x_adv) -> np.ndarray:
    with torch.no_grad():
        return ((model(x_adv).argmax(1) != y).numpy() & (det.score(x_adv) <= det.threshold))


def test_guarded_apgd_breaks_at_least_what_apgd_breaks_on_the_guarded_model(trained_model, mnist_small):
    xv, x, y = mnist_small[1][0][:500], mnist_small[1][0][500:580], mnist_small[1][1][500:580]
    det = ReconstructionDetector(trained_model, "recon").fit(xv, fpr=0.05)
    torch.manual_seed(0)
    ours = run_attack(make_attack("guarded-apgd", trained_model, 0.2, detector=det, steps=20), x, y, seed=0)
    torch.manual_seed(0)  # torchattacks' APGD-CE and APGD-DLR on the C+1 model as it is, the true label as target
    plain = GuardedClassifier(trained_model, det)
    x_plain = x.clone()
    for loss in ("ce", "dlr"):
        atk = torchattacks.APGD(plain, eps=0.2, steps=20, loss=loss, n_restarts=1, seed=0)
        left = ~torch.as_tensor(_broken(trained_model, det, x, y, x_plain))
        x_plain[left] = atk(x[left], y[left]).detach()
    ours_broken, plain_broken = _broken(trained_model, det, x, y, ours), _broken(trained_model, det, x, y, x_plain)
    assert plain_broken.sum() > 0  # the comparison means something
    assert ours_broken.sum() >= plain_broken.sum(), (ours_broken.sum(), plain_broken.sum())


@pytest.fixture(scope="module")
def fast_mnist_detectors(mnist_small):
    """The clean model, a detector per score, 20 inputs and oblivious PGD-40's examples of them."""
    model, ae = load_model("fast-mnist"), load_model("mnist-ae")
    xv, x, y = mnist_small[1][0][:500], mnist_small[1][0][600:620], mnist_small[1][1][600:620]
    dets = {s: make_detector(model, s, autoencoder=ae if s == "magnet" else None).fit(xv, fpr=0.05)
            for s in ("confidence", "joint-sum", "magnet", "mahalanobis")}
    x_pgd = run_attack(make_attack("pgd", model, 0.3), x, y, seed=0)
    return model, dets, x, y, x_pgd


@pytest.mark.parametrize("score", ["confidence", "joint-sum", "magnet", "mahalanobis"])
@pytest.mark.parametrize("name", ["adaptive-pgd", "selective-pgd", "orthogonal-pgd", "guarded-apgd"])
def test_each_detector_aware_attack_works_through_each_score(fast_mnist_detectors, name, score):
    """On the clean model at eps 0.3, at the default budget: each attack that knows the score gets at
    least as many inputs past it as PGD-40 that ignores it (an attacker who knows the detector can do
    what one who does not can), and where the score stops PGD (joint-sum, magnet: 0 of 20; mahalanobis:
    6) at least 5 of 20 more, which it can only do through the score's gradient. Measured: confidence
    17-20 of 20 (PGD 17), joint-sum 7-20 (PGD 0), magnet 20 (PGD 0), mahalanobis 12-20 (PGD 6)."""
    model, dets, x, y, x_pgd = fast_mnist_detectors
    det = dets[score]
    kw = {"steps": 40, "step_size": 0.01, "search_steps": 2, "targets": "untargeted"}
    x_adv = run_attack(make_attack(name, model, 0.3, detector=det, **kw), x, y, seed=0)
    rate, oblivious = _broken(model, det, x, y, x_adv).mean(), _broken(model, det, x, y, x_pgd).mean()
    assert rate >= oblivious, (rate, oblivious)
    assert oblivious >= 0.5 or rate >= oblivious + 0.25, (rate, oblivious)


def _crippled(name: str, fn, steps: int = 10):
    """A registry entry for an attack built to fail one sanity check."""
    def build(model, eps, steps=None, **_):
        return Attack(name, eps, lambda x, y: fn(model, eps, steps or 10, x, y), False, steps or 10, model, "crippled")
    return (SimpleNamespace(build=build, DEFAULT_STEPS=steps), False, "crippled: " + name)


def _pgd(model, eps, steps, x, y, step_size=0.01):
    return torchattacks.PGD(model, eps=eps, alpha=step_size, steps=steps, random_start=False)(x, y)


@pytest.mark.parametrize("check, entry", [
    ("monotone-eps", _crippled("weaker-with-eps", lambda m, e, s, x, y: x.clone() if e > 0.15 else _pgd(m, e, 10, x, y))),
    ("eps-1", _crippled("does-nothing", lambda m, e, s, x, y: x.clone())),
    ("double-steps", _crippled("step-starved", lambda m, e, s, x, y: _pgd(m, e, s, x, y, step_size=0.004), steps=2)),
])
def test_each_sanity_check_fails_on_an_attack_crippled_to_fail_it(trained_model, mnist_small, monkeypatch, check, entry):
    name = entry[2].split(": ")[1]
    monkeypatch.setitem(REGISTRY, name, entry)
    xv, x, y = mnist_small[1][0][:300], mnist_small[1][0][300:360], mnist_small[1][1][300:360]
    result = run_benchmark(trained_model, xv, x, y, methods=[name], eps_list=[0.1, 0.3], scores=["confidence"],
                           sanity_n=60, full=True)
    assert any(r["check"] == check and name in r["detail"] for r in failed(result.sanity)), result.sanity
    # the same checks pass for PGD-40 itself, so it is the crippling that fails them
    honest = run_benchmark(trained_model, xv, x, y, methods=["pgd"], eps_list=[0.1, 0.3], scores=["confidence"],
                           sanity_n=60, full=True)
    assert not [r for r in failed(honest.sanity) if r["check"] == check and "robust accuracy" in r["detail"]]


def test_the_eps1_check_gives_a_fixed_step_attack_a_step_that_crosses_the_whole_range(trained_model, mnist_small,
                                                                                     monkeypatch):
    """40 steps of 0.01 reach 0.4 from the start: at eps 1.0 the check must give them 2.5 / 40
    (Madry's rule), else it checks eps 0.4, not an unbounded attack. The run itself keeps its step."""
    built = []

    def build(model, eps, steps=None, step_size=None, **_):
        built.append((eps, step_size))
        alpha, n = step_size or 0.01, steps or 40
        return Attack("step-recorder", eps, lambda x, y: _pgd(model, eps, n, x, y, step_size=alpha), False, n, model, "")

    monkeypatch.setitem(REGISTRY, "step-recorder", (SimpleNamespace(build=build, DEFAULT_STEPS=40, DEFAULT_STEP_SIZE=0.01),
                                                    False, "records its step"))
    xv, x, y = mnist_small[1][0][:300], mnist_small[1][0][300:320], mnist_small[1][1][300:320]
    result = run_benchmark(trained_model, xv, x, y, methods=["step-recorder"], eps_list=[0.3], scores=["confidence"],
                           sanity_n=10, full=True)
    assert (0.3, None) in built and (1.0, 2.5 / 40) in built, built
    (row,) = [r for r in result.sanity if r["check"] == "eps-1"]
    assert "step 0.0625" in row["detail"], row
    assert unbounded_step_size("pgd", 10, None) == 0.25 and unbounded_step_size("pgd", 40, 0.1) == 0.1
    assert unbounded_step_size("apgd") is None and unbounded_step_size("autoattack", 100) is None


def test_the_black_box_check_fails_when_the_white_box_attack_is_crippled(trained_model, mnist_small, monkeypatch):
    monkeypatch.setitem(REGISTRY, "does-nothing", _crippled("does-nothing", lambda m, e, s, x, y: x.clone()))
    xv, x, y = mnist_small[1][0][:300], mnist_small[1][0][300:340], mnist_small[1][1][300:340]
    result = run_benchmark(trained_model, xv, x, y, methods=["does-nothing", "square"], eps_list=[0.3],
                           scores=["confidence"], sanity_n=0, attack_kwargs={"queries": 100}, full=True)
    assert [r for r in failed(result.sanity) if r["check"] == "black-box-weaker"]


def _pct(text: str) -> float:
    return round(float(text), 1)


def test_the_readmes_headline_figures_are_the_csvs_they_cite():
    """The 'Recommended models' table: clean accuracy, AutoAttack, threshold, worst case with its
    interval, N and the eps-0 floor, each equal (as printed) to the report the row links (the worst
    case to the union of reports the row links, where it links one)."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Recommended models", 1)[1].split("\n\n")
    rows = [line for block in table[:4] for line in block.splitlines() if line.startswith("| MNIST") or line.startswith("| Fashion")]
    assert len(rows) == 2
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        model = cells[1].strip("`")
        report = ROOT / re.search(r"\((reports/[^)]+)/detection\.md\)", cells[5]).group(1)
        worst = pd.read_csv(report / "worst_case.csv").query("score == 'confidence'").set_index("eps")
        detection = pd.read_csv(report / "detection.csv")
        clean = json.loads((ROOT / "reports" / model / "eval-test.json").read_text())["accuracy"]
        assert cells[2] == f"{100 * clean:.2f} %", (model, cells[2])
        aa, aa_eps = re.fullmatch(r"([\d.]+) % at eps ([\d.]+)", cells[3]).groups()
        aa_rows = detection.query("method == 'autoattack'")
        cascade = json.loads((report / "benchmark.json").read_text()).get("cascade", False)
        if cascade or aa_rows.empty or not np.isclose(aa_rows["eps"], float(aa_eps)).any():
            # measured in its own report (a cascade's AutoAttack row counts only what PGD left standing)
            (aa_report,) = (ROOT / "reports" / model).glob(f"attack-autoattack-eps{aa_eps}*/detection.csv")
            aa_rows = pd.read_csv(aa_report).query("method == 'autoattack'")
        acc = aa_rows[np.isclose(aa_rows["eps"], float(aa_eps))]["robust_acc"].iloc[0]
        assert _pct(aa) == round(100 * acc, 1), (model, aa, acc)
        threshold = detection.query("score == 'confidence'")["threshold"].iloc[0]
        assert float(cells[4]) == pytest.approx(threshold, rel=5e-3), (model, cells[4], threshold)
        union = re.search(r"\((reports/benchmarks/union_worst_case[^)]+\.json)\)", cells[5])
        if union:  # the worst case joins attacks of several reports (benchmarks/union_worst_case.py)
            joined = json.loads((ROOT / union.group(1)).read_text())
            assert any(r.endswith(report.name) for r in joined["reports"])  # the union includes the linked report
            worst = pd.DataFrame(joined["rows"]).query("score == 'confidence'").set_index("eps").assign(
                eps0_floor=worst["eps0_floor"])
        claims = re.findall(r"([\d.]+) %\**\s*\[([\d.]+), ([\d.]+)\] at eps ([\d.]+)", cells[5])
        assert claims, cells[5]
        for rate, lo, hi, eps in claims:
            w = worst.loc[float(eps)]
            assert (_pct(rate), _pct(lo), _pct(hi)) == tuple(round(100 * v, 1) for v in (w.undetected_success_rate,
                                                                                          w.ci_low, w.ci_high)), (model, eps)
        n = int(re.search(r"N = ([\d,]+)", cells[5]).group(1).replace(",", ""))
        assert (worst["n"] == n).all()
        assert cells[6] == f"{100 * worst['eps0_floor'].iloc[0]:.1f} %", (model, cells[6])


def test_no_test_passes_by_returning_early_when_its_data_is_missing():
    """A test that cannot run for want of data must say so as a skip: no `return` under an `if`
    that looks for a file or dataset inside a test function."""
    offenders = []
    for path in (ROOT / "tests").glob("test_*.py"):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines[:-1]):
            if re.match(r"\s+if not .*(exists|is_file|is_dir|available)\(", line) and lines[i + 1].strip() == "return":
                offenders.append(f"{path.name}:{i + 1}")
    assert not offenders, offenders

