import pytest
import torch

from robustgen import ReconstructionDetector
from robustgen.attacks import (
    Attack,
    AttackCheckError,
    make_attack,
    parse_eps,
    run_attack,
)
from robustgen.metrics import detection_row


def test_parse_eps():
    assert parse_eps("8/255") == pytest.approx(8 / 255)
    assert parse_eps("0.3") == 0.3 and parse_eps(0.1) == 0.1
    for bad in ("abc", "0", "1.5", "-0.1", "1/0"):
        with pytest.raises(ValueError):
            parse_eps(bad)


@pytest.mark.parametrize("broken, message", [
    (lambda x, y: (x + 0.5).clamp(0, 1), "exceeds eps"),
    (lambda x, y: x + 0.05, r"\[0, 1\] pixel range"),
    (lambda x, y: x * float("nan"), "NaN"),
    (lambda x, y: x[:, :, :14], "shape"),
])
def test_checks_catch_a_broken_attack(broken, message):
    x = torch.rand(4, 1, 28, 28) * 0.8 + 0.2  # max above 0.95, so +0.05 leaves [0, 1]
    attack = Attack("broken", 0.1, broken, False, 1)
    with pytest.raises(AttackCheckError, match=message):
        run_attack(attack, x, torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize("name", ["fgsm", "bim", "pgd"])
def test_oblivious_attacks_stay_in_the_ball_and_hurt(trained_model, mnist_small, name):
    torch.manual_seed(0)
    x, y = mnist_small[1][0][:100], mnist_small[1][1][:100]
    x_adv = run_attack(make_attack(name, trained_model, 0.2, steps=10, step_size=0.05), x, y)
    assert (x_adv - x).abs().max() <= 0.2 + 1e-6
    with torch.no_grad():
        clean = (trained_model(x).argmax(1) == y).float().mean()
        robust = (trained_model(x_adv).argmax(1) == y).float().mean()
    assert robust < clean - 0.3


def test_adaptive_pgd_evades_at_least_as_often_as_pgd(trained_model, mnist_small):
    torch.manual_seed(0)
    (xv, _), (x, y) = (mnist_small[1][0][:500], None), (mnist_small[1][0][500:700], mnist_small[1][1][500:700])
    det = ReconstructionDetector(trained_model, "recon").fit(xv, fpr=0.05)
    kw = {"steps": 15, "step_size": 0.03}
    outcome = {}
    for name in ("pgd", "adaptive-pgd"):
        atk = make_attack(name, trained_model, 0.3, detector=det, search_steps=3, **kw)
        x_adv = run_attack(atk, x, y, batch_size=100)
        assert (x_adv - x).abs().max() <= 0.3 + 1e-6
        with torch.no_grad():
            pc, pa = trained_model(x).argmax(1).numpy(), trained_model(x_adv).argmax(1).numpy()
        row = detection_row(y=y.numpy(), pred_clean=pc, pred_adv=pa, s_clean=det.score(x), s_adv=det.score(x_adv),
                            thresholds={0.05: det.threshold}, fpr=0.05)
        outcome[name] = row["undetected_success_rate"]
    assert outcome["adaptive-pgd"] >= outcome["pgd"] + 0.2  # measured: 0.525 -> 0.94


def test_adaptive_needs_a_fitted_detector(trained_model):
    with pytest.raises(ValueError, match="fitted ReconstructionDetector"):
        make_attack("adaptive-pgd", trained_model, 0.3)
    with pytest.raises(ValueError, match="unknown attack"):
        make_attack("cw", trained_model, 0.3)
