"""Attacks: a registry of oblivious attacks (torchattacks) and detector-aware ones (ours).

All attacks work in [0, 1] pixel space with an L-infinity budget ``eps`` and return images of the
input's shape. An *oblivious* attack knows only the classifier (``model(x)`` -> logits); an
*adaptive* attack also knows the detector (its score and threshold).

    attack = make_attack("pgd", model, eps=0.3)               # PGD-40, step 0.01, random start
    x_adv = run_attack(attack, x, y, batch_size=500)          # batched, on the model's device, checked
    attack = make_attack("adaptive-pgd", model, eps=0.3, detector=det)
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import torch

from .adaptive import AdaptivePGD

ATTACKS = {
    "fgsm": "FGSM (Goodfellow et al. 2015), one signed-gradient step of size eps; oblivious",
    "bim": "BIM (Kurakin et al. 2017), iterative FGSM without random start; oblivious",
    "pgd": "PGD (Madry et al. 2018), random start, projected signed-gradient steps; oblivious",
    "adaptive-pgd": "detector-aware PGD: a plain PGD round, then margin loss + weighted detector score "
                    "with the weight binary-searched per input; keeps the best evading example",
}
DEFAULT_STEPS = 40
DEFAULT_STEP_SIZE = 0.01


class AttackCheckError(RuntimeError):
    """An attack produced images outside the eps-ball, outside [0, 1], or with NaN."""


def parse_eps(value: str | float) -> float:
    """``0.3``, ``"0.3"`` or ``"8/255"`` -> float in (0, 1]."""
    try:
        eps = float(Fraction(str(value).strip())) if not isinstance(value, float) else value
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"cannot read eps {value!r}; give a number in [0, 1] pixel units like 0.3 or 8/255") from None
    if not 0.0 < eps <= 1.0:
        raise ValueError(f"eps must lie in (0, 1] (pixel units in [0, 1]), got {value!r}")
    return eps


def is_adaptive(name: str) -> bool:
    return name.startswith("adaptive")


@dataclass
class Attack:
    """A configured attack: ``fn(x, y) -> x_adv`` on one batch, plus what it is."""

    name: str
    eps: float
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    adaptive: bool
    steps: int

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.fn(x, y)


def make_attack(name: str, model: torch.nn.Module, eps: float | str, *, steps: int | None = None,
                step_size: float | None = None, random_start: bool = True, detector=None,
                search_steps: int = 5) -> Attack:
    """Build an attack by name (see ``ATTACKS``). ``steps``/``step_size`` default to PGD-40 with
    step 0.01 (MNIST); FGSM ignores them. ``adaptive-pgd`` needs a fitted ``detector``."""
    import torchattacks

    eps = parse_eps(eps)
    steps = DEFAULT_STEPS if steps is None else steps
    step_size = DEFAULT_STEP_SIZE if step_size is None else step_size
    if steps < 1 or step_size <= 0:
        raise ValueError("steps must be at least 1 and step_size positive")
    if name == "fgsm":
        return Attack(name, eps, torchattacks.FGSM(model, eps=eps), False, 1)
    if name == "bim":
        return Attack(name, eps, torchattacks.BIM(model, eps=eps, alpha=step_size, steps=steps), False, steps)
    if name == "pgd":
        atk = torchattacks.PGD(model, eps=eps, alpha=step_size, steps=steps, random_start=random_start)
        return Attack(name, eps, atk, False, steps)
    if name == "adaptive-pgd":
        if detector is None or detector.threshold is None:
            raise ValueError("adaptive-pgd attacks a detector: pass a fitted ReconstructionDetector")
        atk = AdaptivePGD(detector, eps=eps, step_size=step_size, steps=steps, search_steps=search_steps)
        return Attack(name, eps, atk, True, steps * (search_steps + 1))
    raise ValueError(f"unknown attack {name!r}; use one of {', '.join(ATTACKS)}")


def check_adversarial(x: torch.Tensor, x_adv: torch.Tensor, eps: float, name: str = "attack") -> None:
    """Fail loudly unless x_adv has x's shape, no NaN, values in [0, 1] and |x_adv - x|_inf <= eps."""
    if x_adv.shape != x.shape:
        raise AttackCheckError(f"{name} returned shape {tuple(x_adv.shape)} for inputs of shape {tuple(x.shape)}")
    if not torch.isfinite(x_adv).all():
        raise AttackCheckError(f"{name} produced NaN or infinite pixels")
    if x_adv.min() < 0.0 or x_adv.max() > 1.0:
        raise AttackCheckError(f"{name} left the [0, 1] pixel range: [{float(x_adv.min()):.4g}, {float(x_adv.max()):.4g}]")
    dist = (x_adv - x).abs().amax()
    if dist > eps + 1e-5:
        raise AttackCheckError(f"{name} perturbation {float(dist):.6f} exceeds eps {eps:.6f}")


def run_attack(attack: Attack, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500,
               on_batch: Callable[[int], None] | None = None) -> torch.Tensor:
    """Attack (x, y) in batches on the model's device; check every batch; return x_adv on x's device."""
    device = attack_device(attack)
    out = []
    for i in range(0, x.shape[0], batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        x_adv = attack(xb, yb).detach()
        check_adversarial(xb, x_adv, attack.eps, attack.name)
        out.append(x_adv.to(x.device))
        if on_batch:
            on_batch(xb.shape[0])
    return torch.cat(out)


def attack_device(attack: Attack) -> torch.device:
    model = getattr(attack.fn, "model", None)
    if model is None:
        return torch.device("cpu")
    return next(model.parameters()).device
