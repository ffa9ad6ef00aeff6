"""A differentiable stand-in for a score without a usable gradient, fitted to the score's values.

Detectors of adversarial inputs mostly read the classifier, so a blocked score (rounding, filtering,
JPEG inside) is often a function of the logits that has simply lost its gradient. Where the gradient
check finds a score blocked and no surrogate was given, ``fit_surrogate`` fits a small network
(two hidden layers of 64, tanh) from the classifier's logits (and its sorted softmax) to the score's
values on clean validation images and on the oblivious PGD examples of some of them (which cover the
range the attacks will visit), and measures R^2 on points held out of the fit. Where it explains the
score (R^2 >= 0.9) the attacks follow its gradient and are judged by the real score: BPDA (Athalye
et al. 2018) with a learned surrogate. Where it does not (a score the logits cannot tell), the
attacks fall back to the finite-difference estimate of :mod:`.estimated_gradient`.

Measured on fast-mnist's 1 - max softmax rounded to 0.01: cosine 0.78 with the unrounded score's
gradient at PGD examples (the finite-difference estimate: 0.66), fitted in 11 s.
"""

from __future__ import annotations

import torch
from torch import nn

from .wrapped_score import WrappedScore

R2_MIN = 0.9  # share of the score's held-out variance the fit must explain to be used
HIDDEN, STEPS, LR = 64, 1500, 3e-3
HOLD_OUT = 5  # every 5th point is held out of the fit and measures it


def features(logits: torch.Tensor) -> torch.Tensor:
    """(N, C) logits -> (N, 2C): the logits and the softmax sorted high to low (class-free confidence)."""
    return torch.cat([logits, logits.softmax(dim=1).sort(dim=1, descending=True).values], dim=1)


class SurrogateNet(nn.Module):
    """logits -> the score, in its own units (the fit runs on standardised targets)."""

    def __init__(self, classes: int, mean: float, std: float):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2 * classes, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN), nn.Tanh(),
                                  nn.Linear(HIDDEN, 1))
        self.mean, self.std = mean, std

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return self.body(features(logits))[:, 0] * self.std + self.mean


def fit_surrogate(logits: torch.Tensor, scores: torch.Tensor, seed: int = 0) -> tuple[SurrogateNet, float]:
    """Fit ``SurrogateNet`` to (N, C) logits -> (N,) scores (full-batch Adam); returns it (frozen, eval)
    and its R^2 on the held-out points (every ``HOLD_OUT``-th)."""
    logits, scores = logits.detach().float(), scores.detach().float()
    held = torch.zeros(len(scores), dtype=torch.bool, device=scores.device)
    held[::HOLD_OUT] = True
    mean, std = float(scores[~held].mean()), float(scores[~held].std().clamp_min(1e-12))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = SurrogateNet(logits.shape[1], mean, std).to(logits.device)
    opt = torch.optim.Adam(net.body.parameters(), lr=LR)
    f, target = features(logits[~held]), (scores[~held] - mean) / std
    with torch.enable_grad():
        for _ in range(STEPS):
            loss = ((net.body(f)[:, 0] - target) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval().requires_grad_(False)
    with torch.no_grad():
        err = ((net(logits[held]) - scores[held]) ** 2).mean()
        var = scores[held].var(unbiased=False)
    r2 = float(1.0 - err / var) if var > 0 else 0.0
    return net, r2


class FittedSurrogate(WrappedScore):
    """``inner``'s value with the gradient of ``net`` (a fitted surrogate of it on the logits); ``r2``
    says how well it fits. Everything else (fit, state, names) is the inner score's."""

    surrogate = "fitted"

    def __init__(self, inner, net: SurrogateNet, r2: float):
        super().__init__(inner)
        self.net, self.r2 = net, r2

    def evaluate(self, model, x):
        value, logits = self.evaluate_real(model, x)
        if not torch.is_grad_enabled() or not x.requires_grad:
            return value, logits
        sur = self.net(logits)
        return value.to(sur.dtype) + (sur - sur.detach()), logits  # exactly the real value; the surrogate's gradient

    def to(self, device):
        self.net = self.net.to(device)
        return super().to(device)
