"""Square attack on classifier + detector: the random search of Andriushchenko, Croce, Flammarion &
Hein 2020 ("Square attack: a query-efficient black-box adversarial attack via random search", L-inf),
with the objective "misclassified and not flagged" judged by the detector's real score.

Gradient-free: it reads only the classifier's logits and the score's value, so a detector with
rounding, filtering or JPEG inside, or any score without a usable gradient, is attacked in earnest
with no surrogate. Per input the loss is

    L(x) = max(margin_y(x), (score(x) - tau) / scale) + 0.1 margin_y(x)     margin_y = z_y - max_{j != y} z_j

whose first term is negative exactly when the input is misclassified and not flagged; the second
keeps a slope where a quantised score is flat. Success is judged exactly (a score on the threshold
is not flagged, and counts as broken). Each iteration changes one square window of side s (shrinking
on Square's schedule) to a random corner of the eps-ball per channel, and keeps it where L falls;
inputs stop once broken. Detector-aware: run once per score, beginning (in a benchmark) at each input's
best oblivious example. Default 1,000 queries per input.

Shapes: x (N, C, H, W) in [0, 1], y (N,) -> x_adv like x, |x_adv - x|_inf <= eps.

    atk = build(model, 0.3, detector=det, queries=1000); x_adv = atk(x, y)
"""

from __future__ import annotations

import math

import torch

from .base import Attack, margin, start_or

DEFAULT_QUERIES = 1000
P_INIT = 0.8  # share of the image the first windows cover (Square's default)
TIE_BREAK = 0.1  # weight of the margin beside max(margin, reject): a slope where the score is flat


def p_schedule(it: int, n_queries: int) -> float:
    """Square's piecewise-constant schedule of the window's area, rescaled to ``n_queries``."""
    i = int(it / n_queries * 10000)
    for bound, factor in ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128),
                          (8000, 256)):
        if i <= bound:
            return P_INIT / factor
    return P_INIT / 512


class GuardedSquare:
    def __init__(self, detector, eps: float, queries: int = DEFAULT_QUERIES):
        self.detector, self.model, self.eps, self.queries = detector, detector.model, eps, queries

    @torch.no_grad()
    def loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(L (N,), broken (N,) bool): misclassified and not flagged exactly where broken."""
        det = self.detector
        scores, logits = det.scorer.evaluate(self.model, x)
        m, r = margin(logits, y), (scores.to(logits.dtype) - det.threshold) / det.score_scale
        # the tie-breaker keeps a signal where the score is flat (rounded, quantised): among candidates
        # the detector rates alike, the more confidently misclassified one wins
        return torch.maximum(m, r) + TIE_BREAK * m, (m < 0) & (scores <= det.threshold)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, y: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
        """The search begins at ``start`` where given (an oblivious attack's example: misclassified,
        the lowest score), else at Square's vertical stripes of +-eps."""
        x, y = x.detach(), y.detach()
        n, c, h, w = x.shape
        eps = self.eps
        stripes = eps * (torch.randint(0, 2, (n, c, 1, w), device=x.device) * 2 - 1).to(x.dtype)
        best = start_or((x + stripes).clamp(0.0, 1.0), x, eps, start)
        best_loss, broken = self.loss(best, y)
        rows, cols = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
        for it in range(self.queries - 1):
            idx = (~broken).nonzero()[:, 0]
            if idx.numel() == 0:
                break
            k = idx.numel()
            s = max(1, min(h - 1, w - 1, int(round(math.sqrt(p_schedule(it, self.queries) * h * w)))))
            top = torch.randint(0, h - s + 1, (k,), device=x.device)
            left = torch.randint(0, w - s + 1, (k,), device=x.device)
            window = (((rows[None] >= top[:, None]) & (rows[None] < top[:, None] + s))[:, :, None]
                      & ((cols[None] >= left[:, None]) & (cols[None] < left[:, None] + s))[:, None, :])[:, None]
            corner = eps * (torch.randint(0, 2, (k, c, 1, 1), device=x.device) * 2 - 1).to(x.dtype)
            xi = x[idx]
            candidate = torch.where(window, xi + corner, best[idx]).clamp(0.0, 1.0)
            candidate = (xi + (candidate - xi).clamp(-eps, eps)).clamp(0.0, 1.0)
            new_loss, new_broken = self.loss(candidate, y[idx])
            better = new_loss < best_loss[idx]
            keep = idx[better]
            best[keep], best_loss[keep], broken[keep] = candidate[better], new_loss[better], new_broken[better]
        return best


def build(model, eps: float, *, detector, queries: int | None = None, **_) -> Attack:
    queries = queries or DEFAULT_QUERIES
    return Attack("guarded-square", eps, GuardedSquare(detector, eps, queries), True, queries, detector.model,
                  f"{queries} queries on 'misclassified and not flagged', judged by the real score", starts=True)
