"""Selective PGD: Bryniarski, Hingun & Carlini 2022, "Evading adversarial example detection defenses
with orthogonal projected gradient descent" (ICLR 2022), section 4.

An attack on classifier + detector that never mixes the two objectives in one loss: at each
L-inf PGD step an input follows the classifier's gradient while it is not yet misclassified (for a
targeted run: not yet classified as the target), and the detector score's gradient once it is.
Per input the misclassified iterate with the lowest detector score is kept, over one untargeted
run and (``targets="all"``) one run targeted at every wrong class; inputs that already fool both
(misclassified with a score at or under the threshold) skip the remaining runs.

Shapes: x (N, C, H, W) in [0, 1], y (N,) -> x_adv like x, |x_adv - x|_inf <= eps.

    atk = build(model, 0.3, detector=det, steps=40, step_size=0.01); x_adv = atk(x, y)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import Attack, project, random_start, start_or

DEFAULT_STEPS, DEFAULT_STEP_SIZE = 40, 0.01


COLLINEAR = 1e-2  # what is left of a gradient after the projection, below which the two are taken as collinear


def orthogonalize(g: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """Remove from each input's gradient ``g`` its component along ``other`` (same shape (N, ...)).

    Where the two are collinear (less than ``COLLINEAR`` of ``g``'s norm is left) ``g`` is kept whole:
    nothing is orthogonal to it, and the sign of the rounding noise left would be a random step. That
    is the case of the classifier's own confidence as the detector (1 - max softmax has the gradient of
    the true class's cross-entropy while that class is the top one): without this, orthogonal PGD could
    not misclassify a single input through ``confidence`` (0 of 20 on fast-mnist at eps 0.3)."""
    gf, of = g.flatten(1), other.flatten(1)
    coef = (gf * of).sum(dim=1) / (of * of).sum(dim=1).clamp_min(1e-20)  # (N,)
    out = gf - coef[:, None] * of
    collinear = out.norm(dim=1) < COLLINEAR * gf.norm(dim=1)
    return torch.where(collinear[:, None], gf, out).view_as(g)


class SelectivePGD:
    orthogonal = False

    def __init__(self, detector, eps: float, step_size: float = DEFAULT_STEP_SIZE, steps: int = DEFAULT_STEPS,
                 targets: str = "all", random_start: bool = True):
        if detector.threshold is None:
            raise ValueError("selective/orthogonal PGD need a fitted detector (call detector.fit first)")
        self.detector, self.model = detector, detector.model
        self.eps, self.step_size, self.steps = eps, step_size, steps
        self.targets, self.random_start = targets, random_start

    def direction(self, g_cls: torch.Tensor, g_det: torch.Tensor, success: torch.Tensor) -> torch.Tensor:
        """The step direction (to descend): classifier gradient until ``success``, then detector's."""
        if self.orthogonal:
            g_cls, g_det = orthogonalize(g_cls, g_det), orthogonalize(g_det, g_cls)
        return torch.where(success[:, None, None, None], g_det, g_cls)

    def _run(self, x, y, target, best, best_score, start=None):
        """One PGD run (from ``start`` where given); updates best/best_score (views the caller writes
        back) in place."""
        scorer = self.detector.scorer
        adv = start_or(random_start(x, self.eps) if self.random_start else x.clone(), x, self.eps, start)
        for t in range(self.steps + 1):
            adv.requires_grad_(True)
            scores, logits = scorer.evaluate(self.model, adv)
            with torch.no_grad():
                pred = logits.argmax(dim=1)
                better = (pred != y) & (scores < best_score)
                best[better] = adv.detach()[better]
                best_score[better] = scores.detach()[better]
            if t == self.steps:
                break
            if target is None:  # untargeted: ascend the cross-entropy of the true label
                cls_loss, success = -F.cross_entropy(logits, y, reduction="sum"), pred != y
            else:  # targeted: descend the cross-entropy of the target
                cls_loss, success = F.cross_entropy(logits, target, reduction="sum"), pred == target
            g_cls = torch.autograd.grad(cls_loss, adv, retain_graph=True)[0]
            g_det = torch.autograd.grad(scores.sum(), adv)[0]
            with torch.no_grad():
                step = self.direction(g_cls, g_det, success).sign()
                adv = project(adv - self.step_size * step, x, self.eps)
        return adv.detach()

    def __call__(self, x: torch.Tensor, y: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
        """The untargeted run begins from ``start`` where given (an oblivious attack's example: its
        first iterate is checked, so a start that already breaks the input is kept unless bettered)."""
        x, y = x.detach(), y.detach()
        tau = self.detector.threshold
        best = x.clone()
        best_score = torch.full((x.shape[0],), math.inf, device=x.device)
        last = self._run(x, y, None, best, best_score, start)
        if self.targets == "all":
            for c in range(self.model.num_classes):
                idx = ((y != c) & (best_score > tau)).nonzero()[:, 0]
                if idx.numel() == 0:
                    continue
                b, s = best[idx], best_score[idx]
                self._run(x[idx], y[idx], torch.full_like(y[idx], c), b, s)
                best[idx], best_score[idx] = b, s
        return torch.where(torch.isfinite(best_score)[:, None, None, None], best, last)


def runs(targets: str, num_classes: int) -> int:
    return 1 + (num_classes - 1 if targets == "all" else 0)


def budget_words(steps: int, step_size: float, k: int) -> str:
    who = f"{k} runs (untargeted + each wrong class)" if k > 1 else "1 untargeted run"
    return f"{steps} steps of {step_size:g} in each of {who}"


def build_variant(cls: type[SelectivePGD], name: str, eps: float, *, detector, steps: int | None = None,
                  step_size: float | None = None, targets: str = "all", random_start: bool = True, **_) -> Attack:
    """The ``Attack`` record of ``cls`` (selective or orthogonal PGD) with its budget."""
    steps, step_size = steps or DEFAULT_STEPS, step_size or DEFAULT_STEP_SIZE
    atk = cls(detector, eps, step_size, steps, targets, random_start)
    k = runs(targets, detector.model.num_classes)
    return Attack(name, eps, atk, True, steps * k, detector.model, budget_words(steps, step_size, k), starts=True)


def build(model, eps: float, **options) -> Attack:
    return build_variant(SelectivePGD, "selective-pgd", eps, **options)
