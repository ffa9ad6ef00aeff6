"""The [style] training options: each term does what it claims, changes the loss, and moves the
measure it targets when a small model is trained with it."""

import pytest
import torch
from conftest import tiny_config

from robustgen.evaluation.style_measures import style_measures
from robustgen.model import recon_error
from robustgen.training.config import ConfigError, StyleConfig, load_config
from robustgen.training.steps import loss_terms
from robustgen.training.style_losses import decoder_style, grad_reverse, style_drift, style_terms, wrong_labels
from robustgen.training.train import build_model, fit


def test_grad_reverse_is_identity_forward_and_negates_the_gradient():
    x = torch.randn(5, requires_grad=True)
    y = grad_reverse(x)
    assert torch.equal(y, x)
    (y * torch.arange(5.0)).sum().backward()
    assert torch.equal(x.grad, -torch.arange(5.0))


def test_wrong_labels_differ_from_the_true_label_and_cover_every_other_class():
    y = torch.full((5000,), 3)
    c = wrong_labels(y, 10, torch.Generator().manual_seed(0))
    assert (c != 3).all()
    assert set(c.tolist()) == set(range(10)) - {3}


def test_decoder_style_noise_and_dropout():
    style = torch.full((2000, 16), 0.5)
    assert decoder_style(style, None) is style
    assert decoder_style(style, StyleConfig()) is style
    noisy = decoder_style(style, StyleConfig(noise=0.2), torch.Generator().manual_seed(0))
    assert abs((noisy - style).std().item() - 0.2) < 0.01
    dropped = decoder_style(style, StyleConfig(dropout=0.25), torch.Generator().manual_seed(0))
    zero = (dropped == 0).float().mean().item()
    assert abs(zero - 0.25) < 0.01
    assert torch.allclose(dropped[dropped != 0], torch.tensor(0.5 / 0.75))  # inverted dropout keeps the mean


def test_consistency_term_trains_decoder_and_style_but_not_the_judge():
    torch.manual_seed(0)
    model = build_model(tiny_config(), 10)
    style = torch.rand(32, 16, requires_grad=True)  # a leaf: the encoder appears only as the judge
    loss = style_terms(model, style, torch.randint(0, 10, (32,)), StyleConfig(consistency=1.0),
                       torch.Generator().manual_seed(0))
    assert loss.item() > 0
    loss.backward()
    assert style.grad is not None and style.grad.abs().sum() > 0
    assert model.dec_fc1.weight.grad.abs().sum() > 0
    for name, p in model.named_parameters():
        if name.startswith("enc_"):
            assert p.grad is None or p.grad.abs().sum() == 0, name


def test_critic_learns_the_class_while_the_style_gets_the_reversed_gradient():
    cfg = load_config("smoke", ["style.critic=1.0", "style.critic_hidden=0"])
    torch.manual_seed(0)
    model = build_model(cfg, 10)
    assert isinstance(model.style_critic, torch.nn.Linear)
    style = torch.rand(32, 16, requires_grad=True)
    y = torch.randint(0, 10, (32,))
    style_terms(model, style, y, cfg.style).backward()
    reversed_grad = style.grad.clone()
    style.grad = None
    torch.nn.functional.cross_entropy(model.style_critic(style), y).backward()
    assert torch.allclose(reversed_grad, -style.grad)
    assert model.style_critic.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="critic"):  # a model built without a critic
        style_terms(build_model(load_config("smoke"), 10), style, y, cfg.style)


@pytest.mark.parametrize("option", ["consistency=0.5", "critic=0.5"])
def test_consistency_and_critic_add_a_positive_term(option, mnist_small):
    (x, y), _ = mnist_small
    cfg = load_config("smoke", [f"style.{option}"])
    torch.manual_seed(0)
    model = build_model(cfg, 10)
    x, y = x[:64], y[:64]
    base = loss_terms(model, x, x, y, 0.05)[0].item()
    with_option, _, _, extra = loss_terms(model, x, x, y, 0.05, cfg.style, torch.Generator().manual_seed(0))
    assert extra.item() > 0.1  # a cross-entropy over 10 classes
    assert with_option.item() == pytest.approx(base + extra.item(), rel=1e-5)


@pytest.mark.parametrize("option", ["noise=0.3", "dropout=0.3"])
def test_style_noise_and_dropout_worsen_a_trained_decoder(option, trained_model, mnist_small):
    (x, y), _ = mnist_small
    x, y = x[:256], y[:256]
    cfg = load_config("smoke", [f"style.{option}"])
    _, _, rec, extra = loss_terms(trained_model, x, x, y, 0.05)
    _, _, rec_option, _ = loss_terms(trained_model, x, x, y, 0.05, cfg.style, torch.Generator().manual_seed(0))
    assert rec_option.item() > 1.02 * rec.item()  # the decoder relies on the style it is now denied
    assert extra.item() == 0


def _fgsm_by_hand(model, x, y, eps=0.1):
    """One signed-gradient step of the cross-entropy, clipped to [0, 1]."""
    xr = x.clone().requires_grad_(True)
    grad, = torch.autograd.grad(torch.nn.functional.cross_entropy(model(xr), y), xr)
    return (x + eps * grad.sign()).clamp(0, 1)


def test_stability_term_is_the_style_change_under_one_fgsm_step(trained_model, mnist_small):
    (x, y), _ = mnist_small
    x, y = x[:64], y[:64]
    model = trained_model
    x_step = _fgsm_by_hand(model, x, y)
    with torch.no_grad():
        expected = (model.encode(x_step)[1] - model.encode(x)[1]).pow(2).sum(1).mean().item()
    xi = x.clone().requires_grad_(True)
    logits, style = model.encode(xi)
    assert style_drift(model, xi, logits, style, y, 0.1).item() == pytest.approx(expected, rel=1e-4)
    assert expected > 1e-3
    # a larger step moves the style further; the term enters the loss with its weight
    assert style_drift(model, xi, logits, style, y, 0.3).item() > expected
    with torch.no_grad():
        style_step = model.encode(x_step)[1]
        style_clean = model.encode(x)[1]
        variance = (style_clean - style_clean.mean(0)).pow(2).sum(1).mean().item()
        redrawn = model.decode(torch.nn.functional.one_hot(y, 10).float(), style_step)
        recon = (x - redrawn).flatten(1).norm(dim=1).mean().item()
    assert style_drift(model, xi, logits, style, y, 0.1, "relative").item() == pytest.approx(expected / variance, rel=1e-4)
    assert style_drift(model, xi, logits, style, y, 0.1, "recon", target=x).item() == pytest.approx(recon, rel=1e-4)
    cfg = StyleConfig(stability=2.0)
    total, _, _, extra = loss_terms(model, x, x, y, 0.05, cfg)
    assert extra.item() == pytest.approx(2.0 * expected, rel=1e-4)
    assert total.item() == pytest.approx(loss_terms(model, x, x, y, 0.05)[0].item() + extra.item(), rel=1e-5)


def test_contrast_measure_is_a_hinge_on_the_runner_up_drawing_of_the_stepped_input(trained_model, mnist_small):
    (x, y), _ = mnist_small
    x, y = x[:64], y[:64]
    model = trained_model
    x_step = _fgsm_by_hand(model, x, y)
    with torch.no_grad():
        logits, style = model.encode(x_step)
        runner_up = logits.clone()
        runner_up[torch.arange(64), y] = -float("inf")
        runner_up = runner_up.argmax(1)
        assert (runner_up != y).all()
        onehot = lambda c: torch.nn.functional.one_hot(c, 10).float()  # noqa: E731
        e_true = recon_error(x_step, model.decode(onehot(y), style))
        e_wrong = recon_error(x_step, model.decode(onehot(runner_up), style))
        expected = torch.relu(torch.log(2 * e_true / e_wrong)).mean().item()
    xi = x.clone().requires_grad_(True)
    logits, style = model.encode(xi)
    got = style_drift(model, xi, logits, style, y, 0.1, "contrast")
    assert got.item() == pytest.approx(expected, rel=1e-4)
    assert 0 < expected < 0.69  # some drawings are closer than twice the true one's error, not all
    model.zero_grad(set_to_none=True)
    got.backward()  # unlike the other measures it trains the decoder as well
    assert model.dec_deconv2.weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)


def test_teacher_label_decodes_the_true_label_in_training(trained_model, mnist_small):
    (x, y), _ = mnist_small
    x, y = x[:64], y[:64]
    model = trained_model
    _, _, rec, extra = loss_terms(model, x, x, y, 0.5, StyleConfig(teacher_label=True))
    with torch.no_grad():
        logits, style = model.encode(x)
        by_hand = recon_error(x, model.decode(torch.nn.functional.one_hot(y, 10).float(), style)).mean()
        softmax = recon_error(x, model.decode(logits.softmax(1), style)).mean()
    assert rec.item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert extra.item() == 0.0
    assert loss_terms(model, x, x, y, 0.5)[2].item() == pytest.approx(softmax.item(), rel=1e-5)


def test_sharpen_rebuilds_the_image_from_a_mixed_class_vector_ranked_by_its_label(trained_model, mnist_small):
    (x, y), _ = mnist_small
    x, y = x[:64], y[:64]
    model = trained_model
    with torch.no_grad():
        style = model.encode(x)[1]
        got = style_terms(model, style, y, StyleConfig(sharpen=2.0), torch.Generator().manual_seed(3), target=x)
        g = torch.Generator().manual_seed(3)  # the same draws, by hand
        c = wrong_labels(y, 10, g)
        lam = 0.5 + 0.5 * torch.rand((64, 1), generator=g)
        mix = lam * torch.nn.functional.one_hot(y, 10) + (1 - lam) * torch.nn.functional.one_hot(c, 10)
        assert (mix.argmax(1) == y).all() and (mix.max(1).values < 1).all()
        expected = 2.0 * recon_error(x, model.decode(mix, style)).mean()
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(ValueError, match="sharpen"):
        style_terms(model, style, y, StyleConfig(sharpen=1.0))


def test_stability_term_trains_the_encoder_at_the_stepped_input_only(mnist_small):
    (x, y), _ = mnist_small
    torch.manual_seed(0)
    model = build_model(tiny_config(), 10)
    xi = x[:32].clone().requires_grad_(True)
    logits, style = model.encode(xi)
    style_drift(model, xi, logits, style, y[:32], 0.1).backward()
    assert model.enc_conv1.weight.grad.abs().sum() > 0
    for name, p in model.named_parameters():
        if name.startswith("dec_"):
            assert p.grad is None or p.grad.abs().sum() == 0, name
    with pytest.raises(ValueError, match="stability"):  # it needs the input to step along
        style_terms(model, style.detach(), y[:32], StyleConfig(stability=1.0))


def test_bad_style_values_are_refused():
    with pytest.raises(ConfigError, match="style.dropout"):
        load_config("smoke", ["style.dropout=1.0"])
    with pytest.raises(ConfigError, match="style.consistency"):
        load_config("smoke", ["style.consistency=-1"])
    with pytest.raises(ConfigError, match="style.stability"):
        load_config("smoke", ["style.stability=-0.5"])
    with pytest.raises(ConfigError, match="style.stability_eps"):
        load_config("smoke", ["style.stability_eps=0"])
    with pytest.raises(ConfigError, match="style.stability_measure"):
        load_config("smoke", ["style.stability_measure=pixels"])
    with pytest.raises(ConfigError, match="style.sharpen"):
        load_config("smoke", ["style.sharpen=-1"])


def _trained(mnist_small, overrides):
    (x, y), (xv, yv) = mnist_small
    cfg = load_config("smoke", ["train.epochs=8", "train.lr=2e-3", *overrides])  # the critic's game needs ~100 steps
    torch.manual_seed(0)
    model = build_model(cfg, 10)
    history = fit(model, torch.optim.Adam(model.parameters(), lr=2e-3), cfg, (x[:2000], y[:2000]), (xv[:500], yv[:500]))
    return model.eval(), history, style_measures(model, xv[:500], yv[:500], xv[500:1000], yv[500:1000], n_decode=100)


@pytest.fixture(scope="module")
def plain_run(mnist_small):
    return _trained(mnist_small, [])


@pytest.fixture(scope="module")
def plain(plain_run):
    return plain_run[2]


@pytest.fixture(scope="module")
def consistency_run(mnist_small):
    return _trained(mnist_small, ["style.consistency=1.0"])


def test_training_with_consistency_makes_the_decoder_draw_the_label(consistency_run, plain):
    _, history, cc = consistency_run
    assert "style_loss" in history[-1] and history[-1]["style_loss"] > 0
    assert cc["drawn_as_label"] > plain["drawn_as_label"] + 0.3


def test_training_with_the_critic_removes_class_information_from_the_style(mnist_small, plain):
    _, _, adv = _trained(mnist_small, ["style.critic=1.0"])
    assert adv["probe_accuracy"] < plain["probe_accuracy"] - 0.3


def _fgsm_style_drift(model, x, y, eps=0.1):
    x_step = _fgsm_by_hand(model, x, y, eps)
    with torch.no_grad():
        return (model.encode(x_step)[1] - model.encode(x)[1]).norm(dim=1).mean().item()


def test_training_with_stability_keeps_the_style_still_under_a_perturbation(mnist_small, plain_run):
    (_, _), (xv, yv) = mnist_small
    base = plain_run[0]
    stable, _, _ = _trained(mnist_small, ["style.stability=10.0"])
    assert _fgsm_style_drift(stable, xv[:500], yv[:500]) < 0.5 * _fgsm_style_drift(base, xv[:500], yv[:500])


def _runner_up_ratio(model, x, y):
    """Median over images of (error of the runner-up class drawn in the FGSM-stepped input's style) /
    (error of the true label drawn in it), both against the stepped input."""
    x_step = _fgsm_by_hand(model, x, y)
    with torch.no_grad():
        logits, style = model.encode(x_step)
        logits[torch.arange(len(y)), y] = -float("inf")
        eye = torch.eye(10)
        ratio = recon_error(x_step, model.decode(eye[logits.argmax(1)], style)) / recon_error(x_step, model.decode(eye[y], style))
    return ratio.median().item()


def test_training_with_contrast_pushes_the_runner_up_drawing_away(mnist_small, plain_run):
    (_, _), (xv, yv) = mnist_small
    contrast, _, _ = _trained(mnist_small, ["style.stability=5.0", "style.stability_measure=contrast"])
    assert _runner_up_ratio(contrast, xv[:500], yv[:500]) > 1.1 * _runner_up_ratio(plain_run[0], xv[:500], yv[:500])


def test_training_with_sharpen_draws_the_first_ranked_class_of_a_mixed_vector(mnist_small, consistency_run):
    (_, _), (xv, yv) = mnist_small
    sharp, _, sharp_measures = _trained(mnist_small, ["style.consistency=1.0", "style.sharpen=1.0"])

    def blend_penalty(model):  # error under 0.6 true label + 0.4 next class, less the error under the true label
        with torch.no_grad():
            style = model.encode(xv[:500])[1]
            eye = torch.eye(10)
            mix = 0.6 * eye[yv[:500]] + 0.4 * eye[(yv[:500] + 1) % 10]
            blended = recon_error(xv[:500], model.decode(mix, style))
            return (blended - recon_error(xv[:500], model.decode(eye[yv[:500]], style))).mean().item()

    # a decoder trained to draw the label it is told (consistency) answers the second class of a mixed
    # vector: its error moves away from the true label's (measured -0.12); sharpen makes the mixed
    # vector draw the first-ranked class, the true label's drawing (measured +0.01)
    assert abs(blend_penalty(consistency_run[0])) > 0.05
    assert abs(blend_penalty(sharp)) < 0.5 * abs(blend_penalty(consistency_run[0]))
    assert sharp_measures["drawn_as_label"] > 0.5  # not by ignoring the class vector: it draws the label it is given (0.80)
