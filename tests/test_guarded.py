import pytest
import torch

from robustgen import GuardedClassifier, ReconstructionDetector
from robustgen.detectors.guarded import merge_reject


@pytest.fixture(scope="module")
def guarded(trained_model, mnist_small):
    det = ReconstructionDetector(trained_model, "recon").fit(mnist_small[1][0][:500], fpr=0.05)
    return GuardedClassifier(trained_model, det)


def test_reject_logit_crosses_zero_exactly_at_the_threshold(guarded, mnist_small):
    x = mnist_small[1][0][500:600] + 0.0
    x[50:] = (x[50:] + 0.3 * torch.rand_like(x[50:])).clamp(0, 1)  # noisy half: many flagged
    det = guarded.detector
    with torch.no_grad():
        g = guarded(x)
    scores = torch.as_tensor(det.score(x), dtype=g.dtype)
    c = guarded.reject_class
    assert g.shape == (100, 11) and guarded.num_classes == 11
    assert torch.equal(g[:, c] > 0, scores > det.threshold)  # the sign of the reject logit is the detector's verdict
    flagged = scores > det.threshold
    assert 0 < int(flagged.sum()) < 100
    assert torch.equal(g.argmax(1) == c, flagged)  # ... and it wins the argmax exactly then
    assert torch.allclose(g[:, :c].max(1).values, torch.zeros(100))  # class logits are shifted to max 0
    # place the threshold exactly on one input's score: its reject logit is zero and it is not rejected
    saved = det.threshold
    det.threshold = float(scores[7])
    try:
        with torch.no_grad():
            g7 = guarded(x)[7]  # the same batch as det.score(x), so the very same float32 score
        assert float(g7[c]) == 0.0 and int(g7.argmax()) != c
    finally:
        det.threshold = saved


def test_merged_logits_mean_misclassified_and_not_rejected(guarded, mnist_small):
    x, y = mnist_small[1][0][600:700], mnist_small[1][1][600:700]
    x = (x + 0.35 * torch.randn_like(x)).clamp(0, 1)  # mixes correct, wrong, flagged and unflagged
    with torch.no_grad():
        pred = guarded.predict(x)
        merged = guarded.merged_logits(x, y).argmax(1)
    broken = (pred != y) & (pred != guarded.reject_class)
    assert torch.equal(merged != y, broken)
    assert torch.equal(guarded.robust(x, y), ~broken)


def test_guarded_needs_a_fitted_detector(trained_model):
    with pytest.raises(ValueError, match="fitted detector"):
        GuardedClassifier(trained_model, ReconstructionDetector(trained_model, "recon"))


@pytest.mark.parametrize("mode", [False, True])
def test_an_attack_library_leaves_the_wrapped_model_in_its_own_mode(trained_model, mnist_small, mode):
    import torchattacks

    x, y = mnist_small[1][0][700:708], mnist_small[1][1][700:708]
    det = ReconstructionDetector(trained_model, "recon").fit(mnist_small[1][0][:200], fpr=0.05)
    trained_model.train(mode)
    try:
        guarded = GuardedClassifier(trained_model, det)  # a new module: its own flag would read True
        assert guarded.training is mode
        torchattacks.PGD(guarded, eps=0.1, alpha=0.05, steps=2)(x, y)  # eval() before, train() after if it read True
        assert [m.training for m in trained_model.modules()] == [mode] * len(list(trained_model.modules()))
    finally:
        trained_model.eval()


def test_the_merged_objective_is_exact_near_ties():
    """Broken (misclassified and not flagged) exactly when the merged argmax is not the label: the
    issue's case, a score exactly on the threshold, ties between classes, and 20,000 random cases."""
    # class logits 0 (a wrong class) and -0.1 (the true one), reject -0.1: misclassified, not flagged
    g = torch.tensor([[0.0, -0.1, -0.1]])
    assert int(merge_reject(g, torch.tensor([1])).argmax(1)) != 1
    assert int(merge_reject(torch.tensor([[0.0, -0.1, 0.0]]), torch.tensor([1])).argmax(1)) != 1  # on the threshold
    assert int(merge_reject(torch.tensor([[0.0, -0.1, 1e-6]]), torch.tensor([1])).argmax(1)) == 1  # flagged
    assert int(merge_reject(torch.tensor([[0.0, -5.0, 0.0]]), torch.tensor([0])).argmax(1)) == 0  # correct
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(20000, 10, generator=gen).round(decimals=1)  # coarse values: many exact ties
    classes = z - z.max(1, keepdim=True).values
    reject = torch.randn(20000, generator=gen).round(decimals=1)
    reject[::7] = 0.0
    y = torch.randint(0, 10, (20000,), generator=gen)
    g = torch.cat([classes, reject[:, None]], dim=1)
    broken = (classes.argmax(1) != y) & (reject <= 0)
    assert torch.equal(merge_reject(g, y).argmax(1) != y, broken)
    assert 0 < int(broken.sum()) < 20000


def test_a_score_whose_threshold_is_its_clean_median_is_measured_in_its_spread():
    """Rounded to 0.01 with most clean scores 0, the threshold at FPR 5 % is the median (0): the
    reject logit's unit is the clean scores' spread, not the 1e-6 floor (10^4 per quantum, which
    saturates every softmax over the merged logits). A continuous score keeps threshold - median."""
    import numpy as np

    from robustgen.detectors.detector import natural_unit

    rounded = np.r_[np.zeros(960), np.full(30, 0.01), np.full(10, 0.05)]
    assert natural_unit(rounded, 0.0) == pytest.approx(rounded.std()) and natural_unit(rounded, 0.0) > 1e-3
    smooth = np.linspace(0.0, 1.0, 1001)
    assert natural_unit(smooth, 0.95) == pytest.approx(0.45)
    assert natural_unit(np.zeros(100), 0.0) == pytest.approx(1e-6)  # nothing to measure: the floor
