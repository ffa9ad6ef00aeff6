"""Detector-aware PGD ("adaptive-pgd"), after Carlini & Wagner 2017, "Adversarial examples are not
easily detected: bypassing ten detection methods" (margin loss plus a detector term, with the
weight found by binary search). It knows the detector's score and threshold.

Minimise, per input, with projected signed-gradient steps in the L-infinity ball of radius eps:

    loss(x') = max(Z_y(x') - max_{j != y} Z_j(x'), -kappa)  +  c * relu(score(x') - tau) / scale

The first term (Carlini & Wagner's margin loss) asks for a misclassification; the second keeps the
detector score under its threshold ``tau`` (``scale`` = the detector's ``score_scale``: threshold
minus the clean median score, or the clean spread where the two coincide; so ``c`` is unit-free). A
first round is plain PGD on the cross-entropy (so the attack is never weaker than oblivious PGD);
then the weight ``c`` is searched per input by binary search over ``search_steps`` rounds of
``steps`` PGD iterations (each round a fresh random start): it grows when the round misclassified
but was always caught, and shrinks when it never misclassified. At every iterate we check the real
criteria (misclassified, score <= tau) and keep the best example: one that fools both, else the
misclassified one with the lowest score, else the last iterate.
Inputs that already fooled both leave the search.

Shapes: x (N, C, H, W) in [0, 1], y (N,) -> x_adv (N, C, H, W) with |x_adv - x|_inf <= eps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import Attack, margin, project, random_start, start_or

DEFAULT_STEPS, DEFAULT_STEP_SIZE = 40, 0.01


def build(model, eps: float, *, detector, steps: int | None = None, step_size: float | None = None,
          search_steps: int = 5, **_) -> Attack:
    steps, step_size = steps or DEFAULT_STEPS, step_size or DEFAULT_STEP_SIZE
    atk = AdaptivePGD(detector, eps=eps, step_size=step_size, steps=steps, search_steps=search_steps)
    words = f"{steps} steps of {step_size:g} x {search_steps + 1} rounds (1 plain + {search_steps} binary search)"
    return Attack("adaptive-pgd", eps, atk, True, steps * (search_steps + 1), detector.model, words, starts=True)


class AdaptivePGD:
    def __init__(self, detector, eps: float, step_size: float = 0.01, steps: int = 40, search_steps: int = 5,
                 c_init: float = 1.0, kappa: float = 0.0, random_start: bool = True):
        if detector.threshold is None:
            raise ValueError("adaptive-pgd needs a fitted detector (call detector.fit first)")
        self.detector, self.model = detector, detector.model
        self.eps, self.step_size, self.steps = eps, step_size, steps
        self.search_steps, self.c_init, self.kappa, self.random_start = search_steps, c_init, kappa, random_start

    def _round(self, x, y, c, best, best_state, best_score, oblivious: bool = False, start=None):
        """One round of PGD on a subset (from ``start`` where given); updates best/best_state/best_score
        in place (subset views are written back by the caller). Returns (misclassified at some step,
        last iterate)."""
        det, tau, scale = self.detector, self.detector.threshold, self.detector.score_scale
        adv = start_or(random_start(x, self.eps) if self.random_start else x.clone(), x, self.eps, start)
        ever_mis = torch.zeros_like(y, dtype=torch.bool)
        for t in range(self.steps + 1):
            adv.requires_grad_(True)
            scores, logits = det.scorer.evaluate(self.model, adv)
            with torch.no_grad():  # check the real criteria at this iterate, keep the best
                mis = logits.argmax(dim=1) != y
                evade = scores <= tau
                ever_mis |= mis
                win = mis & evade & (best_state < 2)
                closer = mis & ~evade & (best_state < 2) & (scores < best_score)
                take = win | closer
                best[take] = adv.detach()[take]
                best_state[win] = 2
                best_state[closer] = 1
                best_score[take] = scores[take]
            if t == self.steps:
                break
            if oblivious:
                loss = -F.cross_entropy(logits, y, reduction="none")
            else:
                loss = margin(logits, y, self.kappa) + c * torch.relu(scores - tau) / scale
            (grad,) = torch.autograd.grad(loss.sum(), adv)
            with torch.no_grad():
                adv = project(adv - self.step_size * grad.sign(), x, self.eps)
        return ever_mis, adv.detach()

    def __call__(self, x: torch.Tensor, y: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
        """The first (plain) round begins from ``start`` where given (an oblivious attack's example)."""
        x, y = x.detach(), y.detach()
        n = x.shape[0]
        c = torch.full((n,), self.c_init, device=x.device)
        lo = torch.zeros(n, device=x.device)
        hi = torch.full((n,), math.inf, device=x.device)
        best = x.clone()
        last = x.clone()
        best_state = torch.zeros(n, dtype=torch.long, device=x.device)  # 0 none, 1 caught, 2 fooled both
        best_score = torch.full((n,), math.inf, device=x.device)
        for r in range(self.search_steps + 1):
            active = (best_state < 2).nonzero()[:, 0]
            if active.numel() == 0:
                break
            b, s, sc = best[active], best_state[active], best_score[active]
            first = start[active] if r == 0 and start is not None else None
            ever_mis, adv = self._round(x[active], y[active], c[active], b, s, sc, oblivious=(r == 0), start=first)
            best[active], best_state[active], best_score[active], last[active] = b, s, sc, adv
            if r == 0:
                continue
            # binary search on c: caught -> weight the detector more; never misclassified -> less
            caught = ever_mis & (s < 2)
            missed = ~ever_mis
            ca, la, ha = c[active], lo[active], hi[active]
            la = torch.where(caught, ca, la)
            ha = torch.where(missed, ca, ha)
            grow = torch.where(torch.isinf(ha), ca * 10.0, (la * ha).sqrt())
            shrink = torch.where(la > 0, (la * ha).sqrt(), ca / 10.0)
            c[active] = torch.where(caught, grow, torch.where(missed, shrink, ca))
            lo[active], hi[active] = la, ha
        return torch.where((best_state > 0)[:, None, None, None], best, last)
