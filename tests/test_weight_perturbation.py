"""Adversarial weight perturbation (``adversary.awp``): the size and direction of the perturbation, the
weights put back bit for bit, and a training step whose gradient is taken at the perturbed weights
while the update applies to the unperturbed ones."""

import copy

import pytest
import torch
from conftest import run_config

from robustgen.checkpoint import load_checkpoint
from robustgen.model import ModelSpec, StyleMemoryNet
from robustgen.training.adversary import InnerAttack, adversarial_loss, classification_loss
from robustgen.training.config import AdversaryConfig, ConfigError, load_config
from robustgen.training.steps import EagerStep
from robustgen.training.train import train_run
from robustgen.training.weight_perturbation import WeightPerturbation


def _net(seed=0):
    torch.manual_seed(seed)
    return StyleMemoryNet(ModelSpec(num_classes=10, channels=(8, 16), hidden=(64, 32), style_dim=4))


def _batch(mnist_small, n=32):
    return mnist_small[0][0][:n], mnist_small[0][1][:n]


def _attack(method="pgd", awp=0.0):
    attack = InnerAttack(AdversaryConfig(method=method, eps=0.2, steps=3, random_start=False, awp=awp), torch.device("cpu"))
    attack.set_eps(0.2)
    return attack


def test_each_weight_moves_by_gamma_of_its_norm_and_is_restored_bit_for_bit(mnist_small):
    model, (x, y) = _net(), _batch(mnist_small)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    awp = WeightPerturbation(model, 0.01)
    assert len(awp.params) == sum(p.dim() > 1 for p in model.parameters()) > 0  # kernels and matrices, no biases
    awp.apply(torch.nn.functional.cross_entropy(model(x), y))
    moved = 0
    for name, p in model.named_parameters():
        if p.dim() > 1 and not name.startswith("dec"):
            assert ((p - before[name]).norm() / before[name].norm()).item() == pytest.approx(0.01, rel=1e-3), name
            moved += 1
        else:
            assert torch.equal(p, before[name]), name  # biases, norms and the decoder stay
    assert moved >= 4
    awp.restore()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_the_perturbation_raises_the_loss_on_the_attacked_batch(mnist_small):
    model, (x, y) = _net(), _batch(mnist_small)
    x_adv = _attack().perturb(model, x, y)
    cfg = _attack().cfg

    def loss():
        return classification_loss(cfg, None, model(x_adv), y)

    with torch.no_grad():
        base = loss().item()
    awp = WeightPerturbation(model, 0.01)
    awp.apply(loss())
    with torch.no_grad():
        assert loss().item() > base + 1e-4


@pytest.mark.parametrize("method", ["pgd", "trades"])
def test_a_step_takes_its_gradient_at_the_perturbed_weights_and_updates_the_saved_ones(mnist_small, method):
    x, y = _batch(mnist_small)
    lr, gamma, alpha = 0.5, 0.02, 0.05

    def step(model, attack):
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        EagerStep(model, opt, x, y, batch_size=len(x), alpha=alpha, noise_std=0.0, shift=0,
                  adversary=attack).step(torch.arange(len(x)), None)
        return dict(model.named_parameters())

    # by hand: attack at w, perturb, the whole loss (same attacked batch) at w + v, its gradient, update w
    ref = _net()
    w = {k: v.detach().clone() for k, v in ref.named_parameters()}
    attack = _attack(method, gamma)
    clean = ref(x) if method == "trades" else None
    x_adv = attack.perturb(ref, x, y, clean_logits=clean)
    awp = WeightPerturbation(ref, gamma)
    awp.apply(classification_loss(attack.cfg, clean, ref(x_adv), y))
    fixed = copy.copy(attack)
    fixed.perturb = lambda *a, **k: x_adv  # the loss at w + v on the batch attacked at w
    loss = adversarial_loss(ref, fixed, x, x, y, alpha)[0]
    names = [k for k, _ in ref.named_parameters()]
    grads = dict(zip(names, torch.autograd.grad(loss, list(ref.parameters()), allow_unused=True)))
    expected = {k: w[k] - lr * g if g is not None else w[k] for k, g in grads.items()}

    got = step(_net(), _attack(method, gamma))
    plain = step(_net(), _attack(method, 0.0))
    for k in names:
        assert torch.allclose(got[k], expected[k], atol=1e-6), k
    assert any(not torch.allclose(got[k], plain[k], atol=1e-6) for k in names)  # the perturbation changed the step


def test_awp_is_validated_and_refused_without_an_adversary_or_under_torchrun(mnist_small):
    assert load_config("robust-mnist", ["adversary.awp=0.005"]).adversary.awp == 0.005
    for bad, message in [("adversary.awp=-0.1", "adversary.awp must lie in"), ("adversary.awp=1", "adversary.awp must lie in"),
                         ("adversary.awp=nan", "adversary.awp must be a finite number")]:
        with pytest.raises(ConfigError, match=message):
            load_config("robust-mnist", [bad])
    with pytest.raises(ConfigError, match="set adversary.method too"):
        load_config("smoke", ["adversary.awp=0.005"])
    x, y = _batch(mnist_small)
    runner = EagerStep(_net(), torch.optim.SGD(_net().parameters(), lr=0.1), x, y, batch_size=32, alpha=0.05,
                       noise_std=0.0, shift=0, adversary=_attack("pgd", 0.01))
    with pytest.raises(ValueError, match="adversary.awp does not run under torchrun"):
        runner.distribute(0, 2)


def test_a_run_trains_with_awp_and_records_it(tmp_path):
    runs = {}
    for awp in (0.0, 0.005):
        runs[awp] = train_run(run_config(tmp_path / str(awp), 1, "adversary.method=\"pgd\"", "adversary.eps=0.1",
                                         "adversary.steps=2", f"adversary.awp={awp}"))
    assert "awp = 0.005" in (runs[0.005] / "config.toml").read_text()
    plain, perturbed = (load_checkpoint(runs[a])["model_state"] for a in (0.0, 0.005))
    assert all(torch.isfinite(v).all() for v in perturbed.values())
    assert not torch.allclose(plain["enc_top.weight"], perturbed["enc_top.weight"], atol=1e-5)  # same seed: awp did it
