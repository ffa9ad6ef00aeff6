"""AutoAttack at its reference budget: Croce & Hein 2020, "Reliable evaluation of adversarial
robustness with an ensemble of diverse parameter-free attacks".

The "standard" ensemble, run in order, each attack only on the inputs the earlier ones did not
misclassify (per input the first misclassifying example is kept):

1. APGD-CE, 100 iterations, 1 restart;
2. APGD-T (targeted DLR), 100 iterations for each of the 9 most likely wrong classes;
3. FAB-T (targeted minimum-norm), 9 target classes, 100 iterations;
4. Square, 5,000 queries.

Built from torchattacks' parts because ``torchattacks.AutoAttack`` runs APGD for only 10
iterations. Oblivious (attacks the classifier alone). ``steps`` scales the APGD/FAB iterations
(``steps=100`` is the reference); Square keeps 5,000 queries. With ``precision="bfloat16"``
(``make_attack``) Square still runs in float32, as it does alone (``square.make``; ``FLOAT32_PARTS``
names it in the budget).

    atk = build(model, 0.3); x_adv = atk(x, y)
"""

from __future__ import annotations

from . import square
from .base import Attack, cascade, seeded

DEFAULT_STEPS = 100
FLOAT32_PARTS = "Square"  # kept in float32 under bfloat16 passes: its random search needs it


def build(model, eps: float, *, steps: int | None = None, **_) -> Attack:
    import torchattacks

    steps = steps or DEFAULT_STEPS
    n_classes = model.num_classes
    attacks = [
        seeded(torchattacks.APGD(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, loss="ce")),
        seeded(torchattacks.APGDT(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, n_classes=n_classes)),
        seeded(torchattacks.FAB(model, norm="Linf", eps=eps, steps=steps, n_restarts=1, multi_targeted=True,
                                n_classes=n_classes)),
        square.make(model, eps, square.DEFAULT_QUERIES),  # float32 passes (square.make)
    ]
    budget = steps + steps * (n_classes - 1) + steps * (n_classes - 1) + square.DEFAULT_QUERIES
    words = (f"APGD-CE {steps} + APGD-T {steps} x {n_classes - 1} targets + FAB-T {steps} x {n_classes - 1} "
             f"targets + Square {square.DEFAULT_QUERIES} queries")
    return Attack("autoattack", eps, lambda x, y: cascade(attacks, model, x, y), False, budget, model, words)
