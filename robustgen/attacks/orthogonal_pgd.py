"""Orthogonal PGD: Bryniarski, Hingun & Carlini 2022, "Evading adversarial example detection
defenses with orthogonal projected gradient descent" (ICLR 2022), section 4.

Selective PGD (``selective_pgd``) in which each gradient first loses its component along the
other: while the input is not yet misclassified it follows the classifier gradient made orthogonal
to the detector gradient (so it does not raise the detector score to first order), and once it
is misclassified the detector gradient made orthogonal to the classifier gradient (so it does not
undo the misclassification). Untargeted and targeted at every wrong class; per input the
misclassified iterate with the lowest detector score is kept.

    atk = build(model, 0.3, detector=det); x_adv = atk(x, y)
"""

from __future__ import annotations

from .base import Attack
from .selective_pgd import DEFAULT_STEP_SIZE, DEFAULT_STEPS, SelectivePGD, budget_words, runs


class OrthogonalPGD(SelectivePGD):
    orthogonal = True


def build(model, eps: float, *, detector, steps: int | None = None, step_size: float | None = None,
          targets: str = "all", random_start: bool = True, **_) -> Attack:
    steps, step_size = steps or DEFAULT_STEPS, step_size or DEFAULT_STEP_SIZE
    atk = OrthogonalPGD(detector, eps, step_size, steps, targets, random_start)
    k = runs(targets, detector.model.num_classes)
    return Attack("orthogonal-pgd", eps, atk, True, steps * k, detector.model, budget_words(steps, step_size, k))
