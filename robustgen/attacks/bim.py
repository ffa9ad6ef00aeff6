"""BIM: Kurakin, Goodfellow & Bengio 2017, "Adversarial examples in the physical world".

Iterative FGSM without a random start: ``steps`` signed-gradient steps of ``step_size`` on the
cross-entropy, projected onto the L-inf eps-ball; oblivious. torchattacks' implementation.

    atk = build(model, 0.3, steps=40, step_size=0.01)
"""

from __future__ import annotations

from .base import Attack

DEFAULT_STEPS, DEFAULT_STEP_SIZE = 40, 0.01


def build(model, eps: float, *, steps: int | None = None, step_size: float | None = None, **_) -> Attack:
    import torchattacks

    steps, step_size = steps or DEFAULT_STEPS, step_size or DEFAULT_STEP_SIZE
    atk = torchattacks.BIM(model, eps=eps, alpha=step_size, steps=steps)
    return Attack("bim", eps, atk, False, steps, model, f"{steps} steps of {step_size:g}, no random start")
