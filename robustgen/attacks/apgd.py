"""APGD: Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks" (the first two attacks of AutoAttack).

Auto-PGD with a step size that adapts itself (no step-size tuning to get wrong): APGD-CE on the
cross-entropy, then APGD-DLR (the scale-invariant difference-of-logits-ratio loss) on the inputs
APGD-CE did not break; per input the first misclassifying example is kept. Oblivious.
torchattacks' implementation. Default: 100 iterations each, one restart (the AutoAttack budget).

    atk = build(model, 0.3, steps=100)
"""

from __future__ import annotations

from .base import Attack, cascade, seeded

DEFAULT_STEPS = 100


def parts(model, eps: float, steps: int) -> list:
    import torchattacks

    return [seeded(torchattacks.APGD(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, loss=loss))
            for loss in ("ce", "dlr")]


def build(model, eps: float, *, steps: int | None = None, **_) -> Attack:
    steps = steps or DEFAULT_STEPS
    attacks = parts(model, eps, steps)
    return Attack("apgd", eps, lambda x, y: cascade(attacks, model, x, y), False, 2 * steps, model,
                  f"APGD-CE {steps} + APGD-DLR {steps} iterations, 1 restart")
