"""APGD on the combined model: Croce & Hein 2020 (APGD-CE, APGD-DLR) run on classifier + detector as
one network, the construction of Carlini & Wagner 2017, "Adversarial examples are not easily
detected" (see ``robustgen.guarded``).

The attack sees ``GuardedClassifier.merged_logits``: C logits in which the reject logit is folded
into the true label's, so that APGD's untargeted objective is exactly "misclassified and not
rejected". APGD-CE runs first, then APGD-DLR on the inputs it did not break; torchattacks'
implementation, 100 iterations each, one restart. Detector-aware: run once per detector score.

    atk = build(model, 0.3, detector=det); x_adv = atk(x, y)
"""

from __future__ import annotations

import torch

from ..detectors.guarded import GuardedClassifier, MergedView
from .base import Attack, has_start, project, seeded

DEFAULT_STEPS = 100


class GuardedAPGD:
    def __init__(self, detector, eps: float, steps: int = DEFAULT_STEPS):
        import torchattacks

        self.guarded, self.eps = GuardedClassifier(detector.model, detector), eps
        self.view = MergedView(self.guarded)
        self.attacks = [seeded(torchattacks.APGD(self.view, norm="Linf", eps=eps, steps=steps, n_restarts=1, loss=loss))
                        for loss in ("ce", "dlr")]

    def _broken(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.guarded.merged_logits(x, y).argmax(dim=1) != y

    def __call__(self, x: torch.Tensor, y: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
        """A ``start`` (an oblivious attack's example) that already breaks its input on the combined
        model is kept as that input's result; APGD runs from x on the others (torchattacks' APGD
        takes no starting point)."""
        adv = x.clone()
        broken = self._broken(x, y)
        given = has_start(start, x.shape[0], x.device) & ~broken
        if given.any():
            idx = given.nonzero()[:, 0]
            s = project(start[idx], x[idx], self.eps)
            good = self._broken(s, y[idx])
            adv[idx[good]] = s[good]
            broken[idx[good]] = True
        for atk in self.attacks:
            # Only inputs not yet broken; APGD checks them again and may keep fewer, which the view
            # follows (see MergedView).
            idx = (~broken).nonzero()[:, 0]
            if idx.numel() == 0:
                break
            self.view.labels = y[idx]
            out = atk(x[idx], y[idx]).detach()
            self.view.labels = None
            adv[idx] = out
            broken[idx] = self._broken(out, y[idx])
        return adv


def build(model, eps: float, *, detector, steps: int | None = None, **_) -> Attack:
    steps = steps or DEFAULT_STEPS
    return Attack("guarded-apgd", eps, GuardedAPGD(detector, eps, steps), True, 2 * steps, detector.model,
                  f"APGD-CE {steps} + APGD-DLR {steps} iterations on the combined model, 1 restart", starts=True)
