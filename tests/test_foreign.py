"""Any classifier, any detector: a plain CNN that is not robustgen's, scores that need only the
classifier, score functions (with a BPDA surrogate), pytorch-ood's detectors, the command line's
--model/--dataset, robustgen.evaluate in one call, and every bad input as one line."""

import json
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import robustgen
import robustgen.evaluation.outcomes
from robustgen import Classifier, Detector, as_classifier, make_detector
from robustgen.classifier import ClassifierError
from robustgen.cli import main
from robustgen.detectors.function_score import FunctionScoreError


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 5, stride=2, padding=2)
        self.fc1 = nn.Linear(8 * 14 * 14, 32)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(F.relu(self.conv(x)).flatten(1))))


@pytest.fixture(scope="module")
def cnn(mnist_small):
    torch.manual_seed(0)
    (x, y), _ = mnist_small
    net = TinyCNN()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(2):
        for i in range(0, len(x), 100):
            opt.zero_grad()
            F.cross_entropy(net(x[i:i + 100]), y[i:i + 100]).backward()
            opt.step()
    return net.eval()


@pytest.fixture(scope="module")
def model(cnn):
    return as_classifier(cnn, (1, 28, 28), feature_layer="act")


def test_the_adapter_reads_class_count_and_features_of_any_module(model, cnn, mnist_small):
    x, y = mnist_small[1][0][:200], mnist_small[1][1][:200]
    assert isinstance(model, Classifier) and model.num_classes == 10 and model.input_shape == (1, 28, 28)
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.85
        f, logits = model.features_and_logits(x[:4])
    assert f.shape == (4, 32) and torch.equal(logits, cnn(x[:4])) and (f >= 0).all()
    assert as_classifier(robustgen.load_model("fast-mnist"), (1, 28, 28)).__class__.__name__ == "StyleMemoryNet"


@pytest.mark.parametrize("module, words", [
    (nn.Identity(), "shape (N, classes)"), (nn.Sequential(nn.Flatten(), nn.Linear(784, 1)), "at least 2 classes"),
    (nn.Conv2d(1, 2, 3), "shape (N, classes)"), ("not a module", "must be a torch.nn.Module"),
])
def test_modules_that_are_not_classifiers_are_named(module, words):
    with pytest.raises(ClassifierError, match=words.replace("(", r"\(").replace(")", r"\)")):
        Classifier(module, (1, 28, 28))


def test_probabilities_are_refused_and_log_probabilities_are_logits(cnn):
    with pytest.raises(ClassifierError, match="returns probabilities"):
        Classifier(nn.Sequential(cnn, nn.Softmax(dim=1)), (1, 28, 28))
    assert Classifier(nn.Sequential(cnn, nn.LogSoftmax(dim=1)), (1, 28, 28)).num_classes == 10


def test_nan_logits_a_class_count_mismatch_and_a_missing_layer_are_refused(cnn):
    class NaNNet(nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], 10), float("nan"))

    with pytest.raises(ClassifierError, match="NaN"):
        Classifier(NaNNet(), (1, 28, 28))
    with pytest.raises(ClassifierError, match="returns 10 logits, but the data has 26 classes"):
        Classifier(cnn, (1, 28, 28), num_classes=26)
    with pytest.raises(ClassifierError, match="no layer named 'fc9'"):
        Classifier(cnn, (1, 28, 28), feature_layer="fc9")
    with pytest.raises(ClassifierError, match="TorchScript model takes no forward hooks"):
        Classifier(torch.jit.script(cnn), (1, 28, 28), feature_layer="fc1")


@pytest.mark.parametrize("score", ["confidence", "energy", "max-logit", "entropy", "mahalanobis", "ood-msp",
                                   "ood-energy", "ood-mahalanobis"])
def test_classifier_scores_work_on_any_model_with_gradients(model, mnist_small, score):
    x_val, x = mnist_small[1][0][:400], mnist_small[1][0][400:420]
    det = make_detector(model, score).fit(x_val, fpr=0.05)
    assert 0.03 <= (det.score(x_val) > det.threshold).mean() <= 0.05
    xg = x[:4].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(det.score_tensor(xg).sum(), xg)
    assert torch.isfinite(g).all() and g.abs().sum() > 0, score


def test_ood_scores_equal_pytorch_oods_own_and_the_decoder_scores_are_refused_by_name(model, mnist_small):
    from pytorch_ood.detector import EnergyBased, MaxSoftmax

    x = mnist_small[1][0][:50]
    with torch.no_grad():
        logits = model(x)
    for name, theirs in (("ood-msp", MaxSoftmax(model)), ("ood-energy", EnergyBased(model))):
        det = make_detector(model, name).fit(mnist_small[1][0][:300])
        assert np.allclose(det.score(x), theirs.predict(x).detach().numpy(), atol=1e-6)
    assert np.allclose(make_detector(model, "energy").fit(x).score(x), -torch.logsumexp(logits, 1).numpy(), atol=1e-5)
    for score in ("recon", "joint-sum", "posterior"):
        with pytest.raises(ValueError, match=f"score '{score}' needs robustgen's style-memory decoder"):
            make_detector(model, score)


def test_a_function_is_a_detector_saved_and_loaded_with_its_function(model, mnist_small, tmp_path):
    def pixel_mass(x):
        return x.flatten(1).sum(1)

    x_val, x = mnist_small[1][0][:300], mnist_small[1][0][300:340]
    det = Detector.from_function(model, pixel_mass, "pixel-mass").fit(x_val, fpr=0.1)
    report, flagged = det.detect(x)
    assert np.allclose(report["scores"], x.flatten(1).sum(1).double().numpy(), rtol=1e-5)
    assert np.array_equal(flagged, report["scores"] > det.threshold)
    det.save(tmp_path / "det.pt")
    with pytest.raises(ValueError, match="guards a classifier that is not robustgen's"):
        Detector.load(tmp_path / "det.pt")
    with pytest.raises(ValueError, match="holds the function score 'pixel-mass'"):
        Detector.load(tmp_path / "det.pt", model=model)
    again = Detector.load(tmp_path / "det.pt", model=model, function=pixel_mass)
    assert again.threshold == det.threshold and np.array_equal(again.detect(x)[1], flagged)
    other = as_classifier(TinyCNN().eval(), (1, 28, 28))
    with pytest.raises(ValueError, match="other weights"):
        Detector.load(tmp_path / "det.pt", model=other, function=pixel_mass)


@pytest.mark.parametrize("fn, words", [
    (lambda x: x.flatten(1).sum(1)[:-1], r"one score per image, shape \(8,\); got \(7,\)"),
    (lambda x: torch.full((x.shape[0],), float("nan")), "NaN or infinite values for 8 of 8"),
    (lambda x: x.flatten(1).sum(1).numpy(), "must return a torch tensor"),
    (lambda x: 1 / 0, "failed on 8 images: ZeroDivisionError"),
])
def test_a_score_function_that_misbehaves_is_named_in_one_line(model, fn, words):
    det = Detector.from_function(model, fn, "mine")
    with pytest.raises(FunctionScoreError, match=words):
        det.fit(torch.rand(8, 1, 28, 28))


def test_a_surrogate_gives_the_gradient_and_the_real_score_the_value(model):
    def rounded(x):  # quantised to 16 levels: its gradient is zero everywhere
        return (x * 15).round().div(15).flatten(1).sum(1)

    def smooth(x):
        return x.flatten(1).sum(1)

    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    plain = Detector.from_function(model, rounded, "rounded")
    (g,) = torch.autograd.grad(plain.scorer.evaluate(model, x)[0].sum(), x)
    assert g.abs().sum() == 0  # no usable gradient without a surrogate
    bpda = Detector.from_function(model, rounded, "rounded", surrogate=smooth)
    s = bpda.scorer.evaluate(model, x)[0]
    (g,) = torch.autograd.grad(s.sum(), x)
    assert torch.allclose(s, rounded(x)) and torch.allclose(g, torch.ones_like(g))


FACTORY = '''
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, {k})
    def forward(self, x):
        return self.fc(x.flatten(1))

def build():
    torch.manual_seed(0)
    return Net().eval()

def broken():
    raise RuntimeError("weights not found\\nsecond line")

def not_a_module():
    return 42

def nan_net():
    class NaN(nn.Module):
        def forward(self, x):
            return torch.full((x.shape[0], 10), float("nan"))
    return NaN()

def softmax_net():
    net = build()
    return nn.Sequential(net, nn.Softmax(dim=1)).eval()

def pixel_mass(model):
    return lambda x: x.flatten(1).sum(1)
'''


@pytest.fixture
def user_code(tmp_path, monkeypatch):
    (tmp_path / "userpkg10.py").write_text(FACTORY.format(k=10))
    (tmp_path / "userpkg26.py").write_text(FACTORY.format(k=26))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in ("userpkg10", "userpkg26"):
        sys.modules.pop(name, None)


def test_attack_and_detect_take_any_model_and_a_score_factory(user_code, capsys):
    out = user_code / "report"
    assert main(["attack", "--model", "userpkg10:build", "--dataset", "mnist", "--n-val", "300", "--n", "20",
                 "--method", "pgd,adaptive-pgd", "--eps", "0.2", "--steps", "3", "--search-steps", "1",
                 "--score", "energy,userpkg10:pixel_mass", "--sanity-n", "0", "--out", str(out), "--quiet"]) == 0
    report = robustgen.read_report(out)
    assert set(report["worst_case"]["score"]) == {"energy", "pixel_mass"}
    assert report["detection"]["err_adv_pred"].isna().all()  # no decoder: no reconstruction errors
    assert len(report["meta"]["model_sha256"]) == 64 and report["meta"]["checkpoint"] == "userpkg10:build"
    np.save(user_code / "x.npy", robustgen.load_dataset("mnist", "test", limit=6)[0].numpy())
    script = torch.jit.script(__import__("userpkg10").build())
    torch.jit.save(script, str(user_code / "net.pt"))
    assert main(["detect", "--model", str(user_code / "net.pt"), "--dataset", "mnist", "--n-val", "300",
                 "--input", str(user_code / "x.npy"), "--out", str(user_code / "s.csv"), "--score", "entropy"]) == 0
    assert len(pd.read_csv(user_code / "s.csv")) == 6


def test_a_torchscript_model_is_attacked_in_bfloat16_when_asked(user_code, monkeypatch):
    from robustgen.attacks.base import bfloat16_passes

    monkeypatch.syspath_prepend(str(user_code))
    net = __import__("userpkg10").build().eval()
    script = torch.jit.script(net)
    x = robustgen.load_dataset("mnist", "test", limit=8)[0]
    with torch.no_grad():
        plain = script(x)
        with bfloat16_passes("cpu"):
            eager_bf16, script_bf16 = net(x), script(x)
    # autocast reaches the compiled graph: its layers compute in bfloat16, as the eager module's do
    assert script_bf16.dtype == torch.float32 and torch.equal(script_bf16, eager_bf16)
    assert not torch.equal(script_bf16, plain)
    torch.jit.save(script, str(user_code / "net.pt"))
    out = user_code / "report"
    assert main(["attack", "--model", str(user_code / "net.pt"), "--dataset", "mnist", "--n-val", "300", "--n", "10",
                 "--method", "pgd", "--eps", "0.2", "--steps", "3", "--precision", "bfloat16", "--score", "entropy",
                 "--sanity-n", "0", "--out", str(out), "--quiet"]) == 0
    assert robustgen.read_report(out)["meta"]["budget"]["pgd"].endswith("bfloat16 passes")


@pytest.mark.parametrize("argv, words", [
    (["--model", "userpkg10:broken", "--dataset", "mnist"], "userpkg10:broken raised RuntimeError: weights not found"),
    (["--model", "userpkg10:not_a_module", "--dataset", "mnist"], "must return a torch.nn.Module, it returned int"),
    (["--model", "userpkg10:nan_net", "--dataset", "mnist"], "NaN or infinite logits"),
    (["--model", "userpkg10:softmax_net", "--dataset", "mnist"], "returns probabilities (each row in [0, 1], summing to 1)"),
    (["--model", "userpkg26:build", "--dataset", "mnist"], "returns 26 logits, but the data has 10 classes"),
    (["--model", "userpkg10:build"], "--model needs --dataset"),
    (["--model", "nosuchpkg:build", "--dataset", "mnist"], "cannot import 'nosuchpkg'"),
    (["--model", "userpkg10:build", "--dataset", "mnist", "--score", "recon"], "needs robustgen's style-memory decoder"),
    (["--model", "userpkg10:build", "--dataset", "mnist", "--score", "mahalanobis", "--feature-layer", "fc9"],
     "no layer named 'fc9'"),
    (["--model", "junk.pt", "--dataset", "mnist"], "not a TorchScript model"),
    (["--dataset", "mnist"], "go with --model"),
])
def test_bad_models_and_scores_are_one_line_and_write_nothing(user_code, capsys, argv, words):
    (user_code / "junk.pt").write_bytes(b"not a model")
    out = user_code / "never"
    rc = main(["attack", *argv, "--n", "5", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and words in err[0] and "Traceback" not in err[0], err
    assert not out.exists()


def test_evaluate_in_one_call_writes_the_report_attack_writes(model, mnist_small, tmp_path):
    def pixel_mass(x):
        return x.flatten(1).sum(1)

    x_val, (x, y) = mnist_small[1][0][:300], (mnist_small[1][0][300:320], mnist_small[1][1][300:320])
    report = robustgen.evaluate(model, x_val, x, y, scores=["confidence", pixel_mass], eps=[0.2],
                                attacks=["pgd", "guarded-apgd"], out=tmp_path / "r", steps=3, sanity_n=0)
    assert set(report["worst_case"]["score"]) == {"confidence", "pixel_mass"}
    assert (tmp_path / "r" / "checksums.sha256").is_file() and not (tmp_path / "r" / "outcomes").exists()
    assert json.loads((tmp_path / "r" / "benchmark.json").read_text())["methods"] == ["pgd", "guarded-apgd"]
    w = report["worst_case"].set_index("score")
    per_input = report["per_input"]
    for score in ("confidence", "pixel_mass"):
        cols = [c for c in per_input.columns if c.endswith(":" + score)]
        assert w.loc[score, "undetected_success_rate"] == pytest.approx(per_input[cols].max(axis=1).mean())
    with pytest.raises(ValueError, match="not empty"):
        robustgen.evaluate(model, x_val, x, y, eps=[0.2], attacks="pgd", out=tmp_path / "r")
    with pytest.raises(ValueError, match="float tensor"):
        robustgen.evaluate(model, x_val, x[:, 0], y, eps=[0.2], attacks="pgd", out=tmp_path / "r2")
    with pytest.raises(ValueError, match="unknown attack 'cw'"):
        robustgen.evaluate(model, x_val, x, y, eps=[0.2], attacks=["pgd", "cw"], out=tmp_path / "r3")
    with pytest.raises(ValueError, match="precision must be one of float32, bfloat16, got 'float16'"):
        robustgen.evaluate(model, x_val, x, y, eps=[0.2], attacks="pgd", out=tmp_path / "r4", precision="float16")
    assert not any((tmp_path / r).exists() for r in ("r2", "r3", "r4"))  # nothing written


class _WrongGradient(torch.autograd.Function):
    """x.sum() forward, but minus its true gradient backward: a gradient that points the wrong way."""

    @staticmethod
    def forward(ctx, x):
        return x.flatten(1).sum(1)

    @staticmethod
    def backward(ctx, g):
        return -g[:, None, None, None].expand(-1, 1, 28, 28)


def test_each_scores_input_gradient_is_checked_before_attacking(model, mnist_small):
    from robustgen.evaluation.gradients import check_gradients

    x_val = mnist_small[1][0][:300]

    def rounded(x):
        return (x * 15).round().div(15).flatten(1).sum(1)

    dets = {"confidence": make_detector(model, "confidence"), "ood-mahalanobis": make_detector(model, "ood-mahalanobis"),
            "rounded": Detector.from_function(model, rounded, "rounded"),
            "rounded-bpda": Detector.from_function(model, rounded, "rounded-bpda", surrogate=lambda x: x.flatten(1).sum(1)),
            "detached": Detector.from_function(model, lambda x: x.detach().flatten(1).sum(1), "detached"),
            "wrong": Detector.from_function(model, _WrongGradient.apply, "wrong")}
    for det in dets.values():
        det.fit(x_val)
    rows = {r["score"]: r for r in check_gradients(dets, x_val)}
    assert rows["confidence"]["gradient"] == "ok" and rows["confidence"]["surrogate"] == "none"
    assert rows["ood-mahalanobis"]["gradient"] == "missing" and rows["ood-mahalanobis"]["surrogate"] == "built in"
    assert rows["rounded"]["gradient"] == "zero" and rows["rounded"]["action"].startswith("BLOCKED")
    assert rows["rounded-bpda"]["gradient"] == "zero" and "surrogate's gradient" in rows["rounded-bpda"]["action"]
    assert rows["detached"]["gradient"] == "missing" and rows["wrong"]["gradient"] == "mismatch"


def test_the_report_says_which_scores_had_blocked_gradients(model, mnist_small, tmp_path):
    def rounded(x):
        return (x * 15).round().div(15).flatten(1).sum(1)

    x_val, (x, y) = mnist_small[1][0][:300], (mnist_small[1][0][300:310], mnist_small[1][1][300:310])
    report = robustgen.evaluate(model, x_val, x, y, scores=["energy", rounded], eps=[0.2], attacks=["pgd"],
                                out=tmp_path / "r", steps=2, sanity_n=0)
    grads = report["gradients"].set_index("score")
    assert grads.loc["energy", "gradient"] == "ok" and grads.loc["rounded", "gradient"] == "zero"
    assert "BLOCKED" in (tmp_path / "r" / "detection.md").read_text()


def test_a_blocked_score_is_attacked_through_a_gradient_estimated_from_its_values(model, mnist_small):
    """1 - max softmax rounded to 0.01 has a zero gradient; the estimate (finite differences along the
    logits' gradients) points where the unrounded score's gradient points, and the attacks get it."""
    from robustgen.evaluation.gradients import check_gradients, with_estimates

    def smooth(x):
        return 1.0 - model(x).softmax(dim=1).max(dim=1).values

    def rounded(x):
        return torch.round(smooth(x) / 0.01) * 0.01

    x_val, x = mnist_small[1][0][:300], mnist_small[1][0][300:340]
    dets = {"rounded": Detector.from_function(model, rounded, "rounded").fit(x_val)}
    rows = check_gradients(dets, x_val)
    assert rows[0]["surrogate"] == "estimated" and "estimated from the score's values" in rows[0]["action"]
    attacked = with_estimates(dets, rows)["rounded"]
    assert dets["rounded"].scorer is not attacked.scorer  # the given detector is left as it was
    x = x[((smooth(x) > 0.02) & (smooth(x) < 0.8)).detach()]  # where the score is not flat at 0
    assert len(x) >= 5
    xg = x.clone().requires_grad_(True)
    value, _ = attacked.scorer.evaluate(model, xg)
    (g,) = torch.autograd.grad(value.sum(), xg)
    xs = x.clone().requires_grad_(True)
    (g_true,) = torch.autograd.grad(smooth(xs).sum(), xs)
    assert torch.equal(value.detach(), rounded(x).detach())  # the value is the real score's
    cos = F.cosine_similarity(g.flatten(1), g_true.flatten(1))
    assert float(cos.mean()) > 0.3, cos  # the real score's own gradient: exactly 0


def test_a_blocked_score_the_logits_explain_is_attacked_through_a_surrogate_fitted_to_it(model, mnist_small):
    """Rounded confidence: a network on the logits fitted to its values (R^2 >= 0.9 held out) gives
    the attacks a gradient close to the unrounded score's; a rounded random projection of the pixels,
    which the logits cannot tell, falls back to the finite-difference estimate."""
    from robustgen.detectors.fitted_surrogate import FittedSurrogate
    from robustgen.evaluation.gradients import check_gradients, with_estimates

    def smooth(x):
        return 1.0 - model(x).softmax(dim=1).max(dim=1).values

    def rounded(x):
        return torch.round(smooth(x) / 0.01) * 0.01

    w = torch.randn(784, generator=torch.Generator().manual_seed(0))

    def projection(x):
        return torch.round(x.flatten(1) @ w)

    x_val, x = mnist_small[1][0][:300], mnist_small[1][0][300:340]
    dets = {"rounded": Detector.from_function(model, rounded, "rounded").fit(x_val),
            "projection": Detector.from_function(model, projection, "projection").fit(x_val)}
    rows = check_gradients(dets, x_val)
    attacked = with_estimates(dets, rows, x_val, [0.1, 0.2])
    rows = {r["score"]: r for r in rows}
    assert rows["rounded"]["surrogate"] == "fitted" and "surrogate fitted to the score's values" in rows["rounded"]["action"]
    scorer = attacked["rounded"].scorer
    assert isinstance(scorer, FittedSurrogate) and scorer.r2 >= 0.9
    assert rows["projection"]["surrogate"] == "estimated" and "explained R^2" in rows["projection"]["action"]
    x = x[((smooth(x) > 0.02) & (smooth(x) < 0.8)).detach()]
    assert len(x) >= 5
    xg = x.clone().requires_grad_(True)
    value, _ = scorer.evaluate(model, xg)
    (g,) = torch.autograd.grad(value.sum(), xg)
    xs = x.clone().requires_grad_(True)
    (g_true,) = torch.autograd.grad(smooth(xs).sum(), xs)
    assert torch.equal(value.detach(), rounded(x).detach())  # the value is the real score's
    cos = F.cosine_similarity(g.flatten(1), g_true.flatten(1))
    assert float(cos.mean()) > 0.5, cos


class _Killed(BaseException):  # not an Exception: nothing on the way may catch it, as with SIGKILL
    pass


def _killed_after(k: int, real):
    """attack_outcome that runs ``k`` attacks, then dies as a killed process would."""
    calls = []

    def attack_outcome(*a, **kw):
        if len(calls) == k:
            raise _Killed
        calls.append(1)
        return real(*a, **kw)

    return attack_outcome


def test_a_run_of_any_model_resumes(user_code, monkeypatch):
    real = robustgen.evaluation.outcomes.attack_outcome
    dies_at_the_second = _killed_after(1, real)

    argv = ["attack", "--model", "userpkg10:build", "--dataset", "mnist", "--n-val", "300", "--n", "10", "--method",
            "pgd,fgsm", "--eps", "0.2", "--steps", "2", "--score", "energy", "--sanity-n", "0", "--quiet"]
    monkeypatch.setattr("robustgen.evaluation.benchmark.attack_outcome", dies_at_the_second)
    with pytest.raises(_Killed):
        main(argv + ["--out", str(user_code / "cut")])
    monkeypatch.setattr("robustgen.evaluation.benchmark.attack_outcome", real)
    assert main(["attack", "--resume", str(user_code / "cut"), "--quiet"]) == 0
    assert main(argv + ["--out", str(user_code / "full")]) == 0
    for name in ("per_input.csv", "worst_case.csv"):
        assert (user_code / "cut" / name).read_text() == (user_code / "full" / name).read_text()


def test_evaluate_resumes_what_an_interrupted_call_finished(model, mnist_small, tmp_path, monkeypatch):
    real = robustgen.evaluation.outcomes.attack_outcome
    dies_at_the_second = _killed_after(1, real)

    x_val, (x, y) = mnist_small[1][0][:300], (mnist_small[1][0][300:312], mnist_small[1][1][300:312])
    kw = dict(scores=["energy"], eps=[0.2], attacks=["pgd", "fgsm"], steps=2, sanity_n=0)
    monkeypatch.setattr("robustgen.evaluation.benchmark.attack_outcome", dies_at_the_second)
    with pytest.raises(_Killed):
        robustgen.evaluate(model, x_val, x, y, out=tmp_path / "cut", **kw)
    monkeypatch.setattr("robustgen.evaluation.benchmark.attack_outcome", real)
    with pytest.raises(ValueError, match="data differs"):  # other data: the kept outcomes are refused
        robustgen.evaluate(model, x_val, x.flip(0), y.flip(0), out=tmp_path / "cut", resume=True, **kw)
    resumed = robustgen.evaluate(model, x_val, x, y, out=tmp_path / "cut", resume=True, **kw)
    full = robustgen.evaluate(model, x_val, x, y, out=tmp_path / "full", **kw)
    assert resumed["per_input"].equals(full["per_input"]) and resumed["meta"]["resumed_attacks"] == 1
