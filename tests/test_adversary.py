import pytest
import torch
from conftest import tiny_config

from robustgen.attacks import make_attack, run_attack
from robustgen.training.adversary import InnerAttack, adversarial_loss, eps_schedule
from robustgen.training.config import AdversaryConfig, ConfigError, load_config
from robustgen.training.steps import loss_terms
from robustgen.training.train import build_model, fit


def test_eps_schedule_warms_up_then_ramps_linearly():
    at = eps_schedule(AdversaryConfig(method="pgd", eps=0.3, warmup_epochs=1, ramp_epochs=2), steps_per_epoch=10)
    assert [at(t) for t in (0, 9)] == [0.0, 0.0]  # clean warm-up epoch
    assert at(10) == pytest.approx(0.3 / 20) and at(19) == pytest.approx(0.15)  # halfway through the ramp
    assert at(29) == pytest.approx(0.3) and at(1000) == pytest.approx(0.3)
    assert eps_schedule(AdversaryConfig(method="none"), 10)(500) == 0.0


def test_adversary_config_is_validated():
    cfg = load_config("robust-mnist")
    assert cfg.adversary.method == "pgd" and cfg.adversary.eps == 0.3 and cfg.adversary.recon_target == "clean"
    for bad, message in [("adversary.method=\"fgsm\"", "adversary.method"), ("adversary.eps=0", "adversary.eps"),
                         ("adversary.recon_target=\"noise\"", "recon_target"), ("adversary.clean_weight=2", "clean_weight")]:
        with pytest.raises(ConfigError, match=message):
            load_config("robust-mnist", [bad])


def test_inner_attack_stays_in_the_ball_and_raises_the_loss(trained_model, mnist_small):
    x, y = mnist_small[1][0][:64], mnist_small[1][1][:64]
    attack = InnerAttack(AdversaryConfig(method="pgd", eps=0.2, steps=5), x.device)
    attack.set_eps(0.2)
    x_adv = attack.perturb(trained_model, x, y, torch.Generator().manual_seed(0))
    assert (x_adv - x).abs().max() <= 0.2 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    ce = torch.nn.functional.cross_entropy
    with torch.no_grad():
        assert ce(trained_model(x_adv), y) > ce(trained_model(x), y) + 1.0
    attack.set_eps(0.0)  # a zero budget leaves the input alone (warm-up on a captured graph)
    assert torch.equal(attack.perturb(trained_model, x, y, torch.Generator().manual_seed(0)), x)


def test_nfgsm_is_one_step_of_eps_from_noise_of_two_eps_and_raises_the_loss(trained_model, mnist_small):
    """de Jorge et al. 2022: start uniform in 2 eps around x, one signed step of eps, no projection
    back to the eps-ball (up to 3 eps from x), clipped to [0, 1]; one gradient per batch."""
    x, y = mnist_small[1][0][:64], mnist_small[1][1][:64]
    attack = InnerAttack(AdversaryConfig(method="nfgsm", eps=0.1, steps=5), x.device)
    attack.set_eps(0.1)
    calls = []
    hook = trained_model.register_forward_hook(lambda *_: calls.append(1))
    x_adv = attack.perturb(trained_model, x, y, torch.Generator().manual_seed(0))
    hook.remove()
    assert len(calls) == 1  # steps is not used: a single gradient
    d = (x_adv - x).abs()
    assert 0.1 + 1e-6 < d.max() <= 0.3 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    noise = (x + (2 * torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) - 1) * 0.2).clamp(0, 1)
    step = (x_adv - noise).abs()
    inside = (x_adv > 0) & (x_adv < 1) & (noise > 0) & (noise < 1)
    assert torch.allclose(step[inside], torch.full_like(step[inside], 0.1), atol=1e-6)  # the whole step, eps
    ce = torch.nn.functional.cross_entropy
    with torch.no_grad():
        assert ce(trained_model(x_adv), y) > ce(trained_model(noise), y) + 0.5
    attack.set_eps(0.0)
    assert torch.equal(attack.perturb(trained_model, x, y, torch.Generator().manual_seed(0)), x)
    with pytest.raises(ConfigError, match="nfgsm_noise"):
        load_config("robust-mnist", ["adversary.nfgsm_noise=-1"])


@pytest.mark.parametrize("method", ["pgd", "trades", "nfgsm"])
def test_adversarial_loss_differs_from_the_clean_loss(trained_model, mnist_small, method):
    x, y = mnist_small[1][0][:32], mnist_small[1][1][:32]
    attack = InnerAttack(AdversaryConfig(method=method, eps=0.3, steps=3), x.device)
    attack.set_eps(0.3)
    torch.manual_seed(0)
    adv, ce_adv, _, _ = adversarial_loss(trained_model, attack, x, x, y, 0.05, torch.Generator().manual_seed(0))
    clean, ce_clean, _, _ = loss_terms(trained_model, x, x, y, 0.05)
    assert ce_adv > ce_clean + 0.5 and adv > clean


def test_adversarial_training_beats_clean_training_under_pgd(trained_model, mnist_small):
    """2 epochs of PGD-3 training on 4,000 images against the clean 8-epoch model of conftest
    (PGD-10 at eps 0.2 on 300 validation images: 42 % against 2 %)."""
    torch.manual_seed(0)
    cfg = tiny_config(epochs=2, lr=2e-3)
    cfg.adversary = AdversaryConfig(method="pgd", eps=0.3, steps=3, ramp_epochs=1)
    model = build_model(cfg, 10)
    fit(model, torch.optim.Adam(model.parameters(), lr=2e-3), cfg, *mnist_small)
    model.eval()
    x, y = mnist_small[1][0][:300], mnist_small[1][1][:300]
    acc = {}
    for name, net in (("clean", trained_model), ("adversarial", model)):
        torch.manual_seed(1)
        x_adv = run_attack(make_attack("pgd", net, 0.2, steps=10, step_size=0.05), x, y)
        with torch.no_grad():
            acc[name] = float((net(x_adv).argmax(1) == y).float().mean())
    assert acc["adversarial"] > acc["clean"] + 0.3, acc
