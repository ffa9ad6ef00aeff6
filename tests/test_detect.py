import warnings

import numpy as np
import pytest
import torch

from robustgen import ReconstructionDetector, make_detector
from robustgen.cli import _warning_printer
from robustgen.detectors.detector import ThresholdTieWarning
from robustgen.detectors.registry import AUTOENCODER_SCORES, SCORES
from robustgen.detectors.scores import Posterior, Score


@pytest.fixture(scope="module")
def val_x(mnist_small):
    return mnist_small[1][0][:600]


@pytest.fixture(scope="module")
def fitted(trained_model, trained_autoencoder, val_x):
    return {name: make_detector(trained_model, name, autoencoder=trained_autoencoder if name in AUTOENCODER_SCORES
                                else None).fit(val_x, fpr=0.05) for name in SCORES}


def test_required_scores_registered():
    assert {"recon", "recon-onehot", "margin", "confidence", "posterior", "joint", "joint-sum", "mahalanobis",
            "magnet", "magnet-jsd"} <= set(SCORES)


def test_fit_sets_threshold_at_fpr_on_the_fitting_data(fitted, val_x):
    for name, det in fitted.items():
        flagged = (det.score(val_x) > det.threshold).mean()
        assert 0.04 <= flagged <= 0.05, name


def test_scores_rise_with_noise_and_have_gradients(trained_model, fitted, val_x):
    x = val_x[:64]
    noisy = (x + 0.4 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    for name in ("recon", "recon-onehot", "joint", "joint-sum"):
        det = fitted[name]
        assert det.score(noisy).mean() > det.score(x).mean(), name
    for name, det in fitted.items():
        xg = x[:8].clone().requires_grad_(True)
        (g,) = torch.autograd.grad(det.score_tensor(xg).sum(), xg)
        assert torch.isfinite(g).all() and g.abs().sum() > 0, name


def test_posterior_reduces_to_classifier_when_decoder_is_uninformative(trained_model):
    post = Posterior()
    post.sigma2 = 1.0
    logits = torch.randn(5, 10)
    flat = torch.full((5, 10), 3.0)  # every class reconstructs equally well
    expected = torch.log1p(-logits.softmax(1).max(1).values)
    assert torch.allclose(post.log_wrong(logits, flat), expected, atol=1e-5)
    # making the predicted class reconstruct worse raises the score
    worse = flat.clone()
    worse[torch.arange(5), logits.argmax(1)] = 4.0
    assert (post.log_wrong(logits, worse) > post.log_wrong(logits, flat)).all()


def test_joint_sum_adds_the_positive_parts_of_the_terms_joint_maxes(fitted, val_x):
    joint, summed = fitted["joint"].scorer, fitted["joint-sum"].scorer
    model = fitted["joint"].model
    x = val_x[:100]
    with torch.no_grad():
        z, _ = summed.normalised_terms(model, x)
        assert torch.allclose(z, joint.normalised_terms(model, x)[0])  # the same two terms, fitted alike
        assert torch.allclose(joint(model, x), z.max(1).values)
        s = summed(model, x)
        assert torch.allclose(s, z.clamp_min(0).sum(1))
    both_low = (z < 0).all(1)
    assert both_low.any() and (s[both_low] == 0).all()  # no term can push the score below "usual"
    assert (s >= z.max(1).values - 1e-6).all()  # never below the max of the two terms
    # on the fitting data each term is 0 at its median and 1 at its 95th percentile
    with torch.no_grad():
        zf, _ = summed.normalised_terms(model, val_x)
    assert torch.allclose(zf.median(0).values, torch.zeros(2), atol=1e-2)
    assert torch.allclose(torch.quantile(zf, 0.95, dim=0), torch.ones(2), atol=5e-2)


def test_numpy_and_torch_inputs_agree(fitted, val_x):
    det = fitted["recon"]
    a = det.score(val_x[:10])
    b = det.score(val_x[:10, 0].numpy())  # (N, 28, 28) numpy
    assert a.shape == (10,) and np.allclose(a, b, atol=1e-6)
    report, is_adv = det.detect(val_x[:10])
    assert is_adv.dtype == bool and np.array_equal(is_adv, report["scores"] > det.threshold)
    assert report["predictions"].shape == (10,) and (report["confidences"] <= 1).all()


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 28, 28), dtype=np.uint8), "floating point"),
    (torch.zeros(2, 1, 28, 28, dtype=torch.uint8), "floating point"),
    (torch.zeros(2, 3, 28, 28), "shape"),
    (torch.zeros(2, 1, 32, 32), "1 channel, 28x28"),
    (torch.full((2, 1, 28, 28), float("nan")), "NaN"),
    (torch.full((2, 1, 28, 28), 255.0), r"\[0, 1\]"),
    (torch.zeros(0, 1, 28, 28), "no images"),
    ([[0.0]], "torch tensor or numpy array"),
])
def test_bad_inputs_are_rejected(fitted, bad, message):
    with pytest.raises(ValueError, match=message):
        fitted["recon"].score(bad)


def test_unfitted_detector_refuses(trained_model, val_x):
    with pytest.raises(RuntimeError, match="call fit"):
        ReconstructionDetector(trained_model, "recon").detect(val_x[:2])
    with pytest.raises(RuntimeError, match="calibrated first"):
        ReconstructionDetector(trained_model, "joint").score(val_x[:2])
    with pytest.raises(ValueError, match="unknown detector score"):
        ReconstructionDetector(trained_model, "magic")


def test_save_load_roundtrip(fitted, val_x, tmp_path):
    det = fitted["joint"]
    det.save(tmp_path / "det.pt")
    back = ReconstructionDetector.load(tmp_path / "det.pt")
    assert back.threshold == det.threshold and back.score_name == "joint"
    assert np.allclose(back.score(val_x[:20]), det.score(val_x[:20]), atol=1e-6)
    assert np.array_equal(back.detect(val_x[:20])[1], det.detect(val_x[:20])[1])


class _MostlyZero(Score):
    """A score that is exactly 0 except on the brightest 2 % of inputs (like `margin` on a decoder
    that draws the label it is told: 0 whenever the predicted label reconstructs best)."""

    name = "mostly-zero"
    cut = None

    def evaluate(self, model, x):
        logits, _ = model.encode(x)
        brightness = x.flatten(1).mean(1)
        return (brightness > self.cut).to(x.dtype) * brightness, logits


def _mostly_zero_detector(model, x):
    det = ReconstructionDetector(model, "recon")
    det.scorer = _MostlyZero()
    det.scorer.cut = float(torch.quantile(x.flatten(1).mean(1), 0.98))
    return det


def test_tied_threshold_warns_and_records_the_realised_fpr(trained_model, val_x, tmp_path):
    det = _mostly_zero_detector(trained_model, val_x)
    with pytest.warns(ThresholdTieWarning, match="share the threshold score 0"):
        det.fit(val_x, fpr=0.05)
    assert det.threshold == 0.0 and det.fit_fpr_ == pytest.approx(0.02, abs=0.002)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an operating point the score can reach: no warning
        det.fit(val_x, fpr=0.01)
    assert det.fit_fpr_ == pytest.approx(0.01, abs=0.002)
    det.save(tmp_path / "d.pt")
    assert ReconstructionDetector.load(tmp_path / "d.pt").fit_fpr_ == det.fit_fpr_


def test_continuous_scores_reach_their_fpr_without_warning(fitted):
    for name, det in fitted.items():
        assert 0.04 <= det.fit_fpr_ <= 0.05, name


def test_cli_prints_a_tie_warning_as_one_line(capsys):
    show = _warning_printer("attack")
    show(ThresholdTieWarning("score 'margin': 96.0% ..."), ThresholdTieWarning, "x.py", 1)
    assert capsys.readouterr().err == "robustgen attack: warning: score 'margin': 96.0% ...\n"


def test_mahalanobis_matches_a_hand_computation_and_has_gradients(trained_model, val_x):
    fit_x, held = val_x[:-100], val_x[-100:]
    det = make_detector(trained_model, "mahalanobis").fit(fit_x, fpr=0.05)
    with torch.no_grad():
        f = trained_model.features(fit_x).double()
        pred = trained_model(fit_x).argmax(1)
    means = torch.stack([f[pred == k].mean(0) for k in range(10)])
    centred = f - means[pred]
    cov = centred.T @ centred / len(f)
    prec = torch.linalg.inv(cov + 1e-6 * torch.trace(cov) / cov.shape[0] * torch.eye(cov.shape[0], dtype=cov.dtype))
    q = torch.stack([((f[:5] - m) @ prec * (f[:5] - m)).sum(1) for m in means], 1).min(1).values
    assert np.allclose(det.score(fit_x[:5]), q.numpy(), rtol=1e-3)
    x = held[:4].clone().requires_grad_(True)
    det.score_tensor(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # detector-aware attacks can follow it
