"""Only attack what still stands (AutoAttack's way, per score) and begin the detector-aware attacks
where the oblivious ones got to.

In a cascade each attack runs only on the inputs still standing for the score it is judged by: a
detector-aware attack on those that no earlier attack broke against its score (misclassified and
not flagged), an oblivious attack on those still standing for some score. The per-input worst case
is the same union as when every attack runs on every input (an input once broken stays broken) at a
fraction of the cost; the per-attack rows then say what each attack added, and ``--full`` runs every
attack on every input for per-attack tables. Gradient attacks run first (cheaper ones first) and the gradient-free ones
last, so that what a gradient-free attack breaks is what every gradient attack left standing (the
``black-box-only`` check).

Starts (both modes): per eps and score, the oblivious example that is misclassified with the lowest
score so far; the detector-aware attacks that take a start (``Attack.starts``) begin there, so an
attacker who knows the detector does at least what one who ignores it does (issue 29, item 6).
"""

from __future__ import annotations

import numpy as np
import torch

from ..attacks import GRADIENT_FREE, is_adaptive

# per-input gradient budget at the defaults: cheap attacks first leave the costly ones less to do (AutoAttack
# runs APGD-CE before the targeted attacks and Square); attacks not named here rank with the middle ones
COST = {"fgsm": 1, "bim": 40, "pgd": 40, "apgd": 200, "autoattack": 3700, "selective-pgd": 40,
        "orthogonal-pgd": 40, "guarded-apgd": 200, "adaptive-pgd": 240}


def cascade_order(methods: list[str]) -> list[str]:
    """Gradient attacks before gradient-free ones; within each, oblivious before detector-aware, and
    cheaper before costlier (``COST``); otherwise the order given."""
    return sorted(methods, key=lambda m: (m in GRADIENT_FREE, is_adaptive(m), COST.get(m, 200)))


def full_order(methods: list[str]) -> list[str]:
    """The order of a ``--full`` run: every oblivious attack (gradient-free ones included) before any
    detector-aware one, so that each aware attack begins at the best of all the oblivious examples;
    within each, gradient attacks first and cheaper before costlier."""
    return sorted(methods, key=lambda m: (is_adaptive(m), m in GRADIENT_FREE, COST.get(m, 200)))


def standing(broken: dict, correct: np.ndarray, eps: float, scores: list[str]) -> np.ndarray:
    """(N,) bool: inputs classified correctly when clean that no attack so far broke at ``eps``
    against at least one of ``scores``."""
    out = np.zeros(len(correct), dtype=bool)
    for s in scores:
        done = [b for (m, e, t), b in broken.items() if e == eps and t == s]
        out |= correct & ~(np.logical_or.reduce(done) if done else np.zeros(len(correct), dtype=bool))
    return out


class Starts:
    """Per (eps, score): the best oblivious example so far of each input (misclassified, lowest
    score), as an (N, C, H, W) tensor with rows of NaN where there is none yet."""

    def __init__(self, shape: tuple):
        self.shape = shape
        self.images: dict[tuple, torch.Tensor] = {}
        self.best: dict[tuple, np.ndarray] = {}

    def update(self, eps: float, idx: np.ndarray, adv: torch.Tensor, misclassified: np.ndarray, scores: dict) -> None:
        """Take the oblivious attack's examples ``adv`` of inputs ``idx`` (rows of ``adv``) where they
        are misclassified with a lower score than the start kept for that score."""
        for s, values in scores.items():
            key = (eps, s)
            if key not in self.images:
                self.images[key] = torch.full(self.shape, float("nan"))
                self.best[key] = np.full(self.shape[0], np.inf)
            better = misclassified & (values < self.best[key][idx])
            rows = idx[better]
            self.images[key][torch.from_numpy(rows)] = adv[torch.from_numpy(np.nonzero(better)[0])].float().cpu()
            self.best[key][rows] = values[better]

    def get(self, eps: float, score: str, idx: np.ndarray) -> torch.Tensor | None:
        images = self.images.get((eps, score))
        return None if images is None else images[torch.from_numpy(idx)]
