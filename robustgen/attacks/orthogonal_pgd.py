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
from .selective_pgd import DEFAULT_STEP_SIZE, DEFAULT_STEPS, SelectivePGD, build_variant

__all__ = ["DEFAULT_STEPS", "DEFAULT_STEP_SIZE", "OrthogonalPGD", "build"]


class OrthogonalPGD(SelectivePGD):
    orthogonal = True


def build(model, eps: float, **options) -> Attack:
    return build_variant(OrthogonalPGD, "orthogonal-pgd", eps, **options)
