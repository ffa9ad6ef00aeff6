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
from .base import Attack, seeded

DEFAULT_STEPS = 100


class GuardedAPGD:
    def __init__(self, detector, eps: float, steps: int = DEFAULT_STEPS):
        import torchattacks

        self.guarded = GuardedClassifier(detector.model, detector)
        self.view = MergedView(self.guarded)
        self.attacks = [seeded(torchattacks.APGD(self.view, norm="Linf", eps=eps, steps=steps, n_restarts=1, loss=loss))
                        for loss in ("ce", "dlr")]

    def _broken(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.guarded.merged_logits(x, y).argmax(dim=1) != y

    def _still_correct(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """``idx`` less the inputs that the view, called on exactly ``x[idx]`` as APGD will call it,
        does not classify correctly; repeated until none drops out. APGD checks its batch itself and
        attacks only the correct ones (then the view's labels are no longer the batch's): an input
        whose score sits on the threshold can flip with the size of the batch it is computed in."""
        while idx.numel():
            self.view.labels = y[idx]
            with torch.no_grad():
                correct = self.view(x[idx]).max(1)[1] == y[idx]  # APGD's own test, to the bit
            self.view.labels = None
            if bool(correct.all()):
                break
            idx = idx[correct]
        return idx

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        adv = x.clone()
        broken = self._broken(x, y)
        for atk in self.attacks:
            # Only inputs not yet broken, so every input APGD receives is "correct" in its eyes and
            # it calls the model on the whole sub-batch in order (its labels are then ours).
            idx = self._still_correct(x, y, (~broken).nonzero()[:, 0])
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
                  f"APGD-CE {steps} + APGD-DLR {steps} iterations on the combined model, 1 restart")
