"""PGD: Madry, Makelov, Schmidt, Tsipras & Vladu 2018, "Towards deep learning models resistant to
adversarial attacks".

A uniform random start in the L-inf eps-ball, then ``steps`` signed-gradient ascent steps of
``step_size`` on the cross-entropy, each projected back onto the ball and [0, 1]; oblivious.
torchattacks' implementation. Defaults: PGD-40, step 0.01 (MNIST).

    atk = build(model, 0.3); x_adv = atk(x, y)     # x (N, C, H, W) in [0, 1], y (N,)
"""

from __future__ import annotations

from .base import Attack

DEFAULT_STEPS, DEFAULT_STEP_SIZE = 40, 0.01


def build(model, eps: float, *, steps: int | None = None, step_size: float | None = None,
          random_start: bool = True, **_) -> Attack:
    import torchattacks

    steps, step_size = steps or DEFAULT_STEPS, step_size or DEFAULT_STEP_SIZE
    atk = torchattacks.PGD(model, eps=eps, alpha=step_size, steps=steps, random_start=random_start)
    start = "random start" if random_start else "no random start"
    return Attack("pgd", eps, atk, False, steps, model, f"{steps} steps of {step_size:g}, {start}")
