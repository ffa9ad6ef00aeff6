"""FGSM: Goodfellow, Shlens & Szegedy 2015, "Explaining and harnessing adversarial examples".

One signed-gradient step of size eps on the cross-entropy (L-inf); oblivious (knows only the
classifier). torchattacks' implementation. x (N, C, H, W) in [0, 1], y (N,) -> x_adv like x.

    atk = build(model, 0.1); x_adv = atk(x, y)
"""

from __future__ import annotations

from .base import Attack


def build(model, eps: float, **_) -> Attack:
    import torchattacks

    return Attack("fgsm", eps, torchattacks.FGSM(model, eps=eps), False, 1, model, "1 step of size eps")
